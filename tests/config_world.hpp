// tests/config_world.hpp - a configuration world of its own for one test,
// shared by the tests that read WEFT_* variables and config files.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "weft/config.hpp"

extern char** environ;

namespace weft_test {

// Sets (or, with nullopt, unsets) an environment variable for one scope.
class EnvVar {
 public:
  EnvVar(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value)
      setenv(name_.c_str(), value->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ~EnvVar() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// No WEFT_* variables (nor the others named), config folders in a fresh
// temporary folder, an empty command-line layer. Everything is restored when
// it ends.
class ConfigWorld {
 public:
  explicit ConfigWorld(std::vector<std::string> also_unset = {}) {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "weft-config-XXXXXX").string();
    root_ = mkdtemp(tmpl.data());
    for (char** var = environ; *var; ++var) {
      const std::string item(*var);
      if (item.starts_with("WEFT_")) also_unset.push_back(item.substr(0, item.find('=')));
    }
    for (const auto& name : also_unset) env_.push_back(std::make_unique<EnvVar>(name, std::nullopt));
    weft::config::clear_cli();
    weft::config::refresh(paths());
  }
  ~ConfigWorld() {
    while (!env_.empty()) env_.pop_back();  // latest first: a variable set twice gets its first value back
    weft::config::clear_cli();
    std::filesystem::remove_all(root_);
    weft::config::refresh();
  }
  ConfigWorld(const ConfigWorld&) = delete;
  ConfigWorld& operator=(const ConfigWorld&) = delete;

  const std::filesystem::path& root() const { return root_; }
  weft::config::Paths paths() const {
    return {{(root_ / "etc").string(), (root_ / "prefix-etc").string()}, (root_ / "user").string(), ""};
  }
  void set_env(const std::string& name, std::optional<std::string> value) {
    env_.push_back(std::make_unique<EnvVar>(name, std::move(value)));
  }
  void write_user_file(const std::string& text) const {
    std::filesystem::create_directories(root_ / "user");
    std::ofstream(user_file()) << text;
  }
  std::filesystem::path user_file() const { return root_ / "user" / "a.yaml"; }

 private:
  std::filesystem::path root_;
  std::vector<std::unique_ptr<EnvVar>> env_;
};

}  // namespace weft_test
