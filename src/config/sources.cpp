// Config files and WEFT_* environment variables, read as Dask's
// collect_yaml and collect_env read theirs.
#include "sources.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "weft/error.hpp"

extern char** environ;  // POSIX: the process environment

namespace weft::config {

namespace detail {
// Generated from src/config/weft.yaml and the configured paths (built_in.cpp).
extern const char built_in_sysconfdir[];
}  // namespace detail

namespace fs = std::filesystem;

Paths default_paths() {
  Paths paths;
  paths.system_dirs.push_back("/etc/weft");
  const std::string installed = std::string(detail::built_in_sysconfdir) + "/weft";
  if (fs::path(installed).lexically_normal() != fs::path("/etc/weft")) paths.system_dirs.push_back(installed);
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  if (xdg && *xdg)
    paths.user_dir = std::string(xdg) + "/weft";
  else if (home && *home)
    paths.user_dir = std::string(home) + "/.config/weft";
  if (const char* weft_config = std::getenv("WEFT_CONFIG")) paths.weft_config = weft_config;
  return paths;
}

namespace detail {
namespace {

// *.yaml and *.yml in `dir`, in name order; a missing folder has none.
void read_dir(const Schema& schema, const std::string& dir, std::vector<Layer>& out) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<std::string> files;
  for (const auto& item : fs::directory_iterator(dir, ec)) {
    const std::string ext = item.path().extension().string();
    if ((ext == ".yaml" || ext == ".yml") && item.is_regular_file(ec)) files.push_back(item.path().string());
  }
  if (ec) throw ConfigError("bad-file", "cannot list config folder " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) out.push_back(read_file(schema, file));
}

}  // namespace

Layer read_file(const Schema& schema, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("bad-file", "cannot read config file " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    throw ConfigError("bad-file", path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                      std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg);
  }
  return schema.from_document(root, path);
}

std::vector<Layer> read_files(const Schema& schema, const Paths& paths) {
  std::vector<Layer> out;
  for (const auto& dir : paths.system_dirs) read_dir(schema, dir, out);
  if (!paths.user_dir.empty()) read_dir(schema, paths.user_dir, out);
  if (!paths.weft_config.empty()) {
    std::error_code ec;
    if (fs::is_directory(paths.weft_config, ec))
      read_dir(schema, paths.weft_config, out);
    else if (fs::exists(paths.weft_config, ec))
      out.push_back(read_file(schema, paths.weft_config));
    else
      throw ConfigError("bad-file", "WEFT_CONFIG names " + paths.weft_config + ", which does not exist");
  }
  return out;
}

Layer read_environment(const Schema& schema) {
  constexpr std::string_view prefix = "WEFT_";
  std::vector<std::pair<std::string, std::string>> variables;
  for (char** var = environ; *var; ++var) {
    const std::string_view item(*var);
    const std::size_t eq = item.find('=');
    if (!item.starts_with(prefix) || eq == std::string_view::npos) continue;
    std::string name(item.substr(0, eq));
    if (name == "WEFT_CONFIG") continue;
    variables.emplace_back(std::move(name), std::string(item.substr(eq + 1)));
  }
  std::sort(variables.begin(), variables.end());
  Layer out;
  for (const auto& [name, value] : variables) {
    // WEFT_OPTIMIZATION__FUSE__ACTIVE -> optimization.fuse.active
    std::string key = name.substr(prefix.size());
    for (std::size_t at = key.find("__"); at != std::string::npos; at = key.find("__", at + 1))
      key.replace(at, 2, ".");
    const std::string source = "environment variable " + name;
    const std::string known = schema.known_key(key, source);
    out.emplace_back(known, schema.from_text(known, value, source));
  }
  return out;
}

}  // namespace detail
}  // namespace weft::config
