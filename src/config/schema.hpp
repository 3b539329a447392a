// Internal to src/config: the schema that the defaults file defines, and the
// checked values that every layer (files, environment, command line, set
// scopes) is made of.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "weft/config.hpp"

namespace weft::config::detail {

/// What a key holds, fixed by its default (see the head of weft.yaml).
enum class Kind { any, boolean, integer, floating, string, bytes, duration };

using Scalar = std::variant<std::monostate, bool, std::int64_t, double, std::string>;

/// A checked value and where it came from.
struct Entry {
  Scalar value;                        ///< byte sizes and durations keep their text
  std::string source;                  ///< "defaults", a file path, "environment variable WEFT_X", ...
  std::optional<std::uint64_t> bytes;  ///< for byte-size keys: the size the text means
  std::optional<double> seconds;       ///< for duration keys: the seconds the text means
};

/// One source's values, in the order given; a later duplicate wins.
using Layer = std::vector<std::pair<std::string, Entry>>;

/// Hashing that accepts string_view, so lookups need no allocation.
struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using EntryMap = std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>>;

/// The keys, kinds and defaults read from the built-in weft.yaml.
class Schema {
 public:
  /// Parses the defaults; throws ConfigError "bad-file" when they are
  /// malformed (a build bug, caught by the tests).
  explicit Schema(std::string_view defaults_text);

  const Layer& defaults() const noexcept { return defaults_; }

  /// The canonical name of `key`; throws ConfigError "unknown-key" naming
  /// `source` (if not empty) and the nearest known name.
  std::string known_key(std::string_view key, const std::string& source) const;
  /// Whether `key` (canonical) names a section such as "optimization.fuse".
  bool is_section(std::string_view key) const { return sections_.count(std::string(key)) != 0; }
  /// The leaf keys under section `key`, for messages.
  std::string keys_under(std::string_view key) const;

  /// Checks a YAML value (scalar or null) for known key `key`, from `source`;
  /// throws ConfigError "bad-value". Strings from files have $VAR expanded.
  Entry from_node(const std::string& key, const YAML::Node& node, const std::string& source) const;
  /// The same for text that was not in a file (environment, command line):
  /// read as a YAML scalar, so quotes make a string and "false" a bool.
  Entry from_text(const std::string& key, std::string_view text, const std::string& source) const;
  /// The same for a value given in code.
  Entry from_value(const std::string& key, const SettingValue& value, const std::string& source) const;

  /// Every key and value of a YAML document (a mapping, or empty), checked.
  Layer from_document(const YAML::Node& root, const std::string& source) const;

  /// The defaults as parsed, for walking the keys in file order.
  const YAML::Node& tree() const noexcept { return tree_; }

 private:
  void add_defaults(const YAML::Node& node, const std::string& prefix);
  void flatten(const YAML::Node& node, const std::string& key, const std::string& source, Layer& out) const;
  Entry from_scalar(const std::string& key, const Scalar& value, const std::string& written,
                    const std::string& source) const;

  YAML::Node tree_;
  Layer defaults_;
  std::unordered_map<std::string, Kind> kinds_;
  std::unordered_set<std::string> sections_;
};

/// The trailing letters of `text` ("MiB" of "128MiB"): the unit that
/// parse_bytes and parse_timedelta look up.
std::string_view unit_of(std::string_view text);

/// A double as short text that reads back as the same float ("0.1", "2.0",
/// "1e+30"), for messages and YAML output.
std::string double_text(double value);

/// A plain (unquoted) YAML scalar typed as Dask's YAML reader (PyYAML,
/// YAML 1.1) types it: null, bool (true/false/yes/no/on/off), integer,
/// float, else string.
Scalar resolve(std::string_view text);

}  // namespace weft::config::detail
