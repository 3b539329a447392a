// Options of one weft-bench run: `--name value` pairs after the benchmark's name.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "weft/error.hpp"

namespace weft_bench {

class Options {
 public:
  Options(int argc, char** argv) {
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0 || i + 1 >= argc)
        throw weft::ValueError("bad-option", "expected --name value, got '" + a + "'");
      values_[a.substr(2)] = argv[++i];
    }
  }
  std::string get(const std::string& name, const std::string& fallback) {
    auto it = values_.find(name);
    std::string v = it == values_.end() ? fallback : it->second;
    used_.push_back(name);
    return v;
  }
  long get_int(const std::string& name, long fallback) {
    return std::stol(get(name, std::to_string(fallback)));
  }
  // Options nobody asked for are typos: say so rather than ignore them.
  void check_all_used() const {
    for (const auto& [name, value] : values_)
      if (std::find(used_.begin(), used_.end(), name) == used_.end())
        throw weft::ValueError("bad-option", "unknown option --" + name);
  }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> used_;
};

}  // namespace weft_bench
