// weft/config.hpp - configuration: YAML files, WEFT_* environment, command
// line and scoped overrides, merged into one set of dotted keys.
//
// Mirrors dask.config. Every key and its default live in the built-in
// weft.yaml (installed as $(datadir)/weft/weft.yaml); a key that is not there
// is an error wherever it is given. Layers, lowest precedence first:
//
//   1. built-in defaults (weft.yaml)
//   2. system files: /etc/weft/*.yaml, then $(sysconfdir)/weft/*.yaml
//   3. user files: $XDG_CONFIG_HOME/weft/*.yaml (default ~/.config/weft)
//   4. WEFT_CONFIG: one YAML file, or a folder of *.yaml files
//   5. WEFT_* environment: WEFT_OPTIMIZATION__FUSE__ACTIVE=false
//   6. command-line flags (set_cli, called by weft::main)
//   7. weft::config::set scopes, the innermost (latest) winning
//
// Key names are case-insensitive and '_' equals '-' (num_workers is
// num-workers); '.' separates levels. Errors are ConfigError and name the key
// and where the value came from (file path, environment variable, ...).
//
// Everything here is thread-safe. Files and environment are read on first
// use; refresh() reads them again.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace weft::config {

// ---- reading values --------------------------------------------------------

/// The value of `key` as a T: bool, int, std::int64_t, double or
/// std::string. An integer value reads as a double too. Throws
/// ConfigError "unknown-key" for a key not in the defaults (or a section
/// such as "optimization.fuse"), "type-mismatch" when the value is another
/// type (null included).
/// A lookup takes a shared lock and one hash probe; for per-call hot paths,
/// cache values and re-read them when generation() changes.
template <class T>
T get(std::string_view key) {
  static_assert(sizeof(T) == 0,
                "weft::config::get<T>: T must be bool, int, std::int64_t, double or std::string");
}
template <>
bool get<bool>(std::string_view key);
template <>
int get<int>(std::string_view key);
template <>
std::int64_t get<std::int64_t>(std::string_view key);
template <>
double get<double>(std::string_view key);
template <>
std::string get<std::string>(std::string_view key);

/// Like get, but a null value gives std::nullopt: one lookup, so no other
/// thread's set can come between an is_null and a get.
template <class T>
std::optional<T> get_optional(std::string_view key) {
  static_assert(sizeof(T) == 0,
                "weft::config::get_optional<T>: T must be bool, int, std::int64_t, double or std::string");
}
template <>
std::optional<bool> get_optional<bool>(std::string_view key);
template <>
std::optional<int> get_optional<int>(std::string_view key);
template <>
std::optional<std::int64_t> get_optional<std::int64_t>(std::string_view key);
template <>
std::optional<double> get_optional<double>(std::string_view key);
template <>
std::optional<std::string> get_optional<std::string>(std::string_view key);

/// True when the value of `key` is null (e.g. num-workers: null).
bool is_null(std::string_view key);

/// A byte size ("128MiB", "5 GB", 1000) read with parse_bytes.
std::uint64_t get_bytes(std::string_view key);

/// A duration in seconds ("100ms", "2h", 5) read with parse_timedelta.
double get_seconds(std::string_view key);

/// Where the value of `key` comes from: "defaults", a file path,
/// "environment variable WEFT_...", "command-line flag --...", "command line"
/// or "weft::config::set".
std::string source_of(std::string_view key);

/// Changes whenever any value may have changed (refresh, set, set_cli), so
/// that hot paths can cache what they read. Never 0.
std::uint64_t generation();

/// The merged configuration, as YAML, keys in the order of the defaults.
std::string dump_yaml();

/// The built-in defaults file, comments included (the schema of all keys).
std::string_view defaults_yaml();

// ---- scoped overrides ------------------------------------------------------

/// A value given in code: text (read like a value in a YAML file, so "false"
/// sets a bool and "2" an integer), a bool, an integer or a double.
class SettingValue {
 public:
  using Scalar = std::variant<bool, std::int64_t, double, std::string>;

  SettingValue(const char* text) : scalar_(std::string(text)) {}       // NOLINT: implicit by design
  SettingValue(std::string_view text) : scalar_(std::string(text)) {}  // NOLINT
  SettingValue(std::string text) : scalar_(std::move(text)) {}         // NOLINT
  SettingValue(bool b) : scalar_(b) {}                                 // NOLINT
  SettingValue(double d) : scalar_(d) {}                               // NOLINT
  /// Any integer type; throws ConfigError "bad-value" above INT64_MAX.
  template <std::integral I>
  requires(!std::same_as<I, bool>) SettingValue(I i) : scalar_(checked_int(i)) {}  // NOLINT

  const Scalar& scalar() const noexcept { return scalar_; }

 private:
  template <std::integral I>
  static std::int64_t checked_int(I i) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
      if (i > static_cast<I>(INT64_MAX)) throw_too_large(static_cast<std::uint64_t>(i));
    }
    return static_cast<std::int64_t>(i);
  }
  [[noreturn]] static void throw_too_large(std::uint64_t i);

  Scalar scalar_;
};

/// Overrides keys for the lifetime of this object, like Dask's
/// `with dask.config.set(...)`:
///
///   weft::config::set scope{{"scheduler", "sync"}, {"num-workers", 2}};
///
/// Values are checked like file values (source "weft::config::set"); when
/// one is bad, nothing is set. Scopes are process-wide, not per thread: the
/// latest live scope wins, and destroying a scope removes exactly its own
/// values, so scopes that end out of order still restore correctly.
class set {
 public:
  set(std::initializer_list<std::pair<std::string_view, SettingValue>> items);
  set(std::string_view key, SettingValue value);
  ~set();
  set(const set&) = delete;
  set& operator=(const set&) = delete;

 private:
  std::uint64_t id_;
};

/// Sets `key` from a command-line flag's text (read like a YAML value);
/// `flag` ("--nthreads") names the source in errors and source_of. A later
/// call for the same key replaces the earlier one. Throws ConfigError.
void set_cli(std::string_view key, std::string_view text, std::string_view flag = {});

/// Forgets every set_cli value (weft::main calls it when it returns).
void clear_cli();

// ---- files and environment ------------------------------------------------

/// Where refresh() reads files, lowest precedence first. Folders are read
/// for *.yaml and *.yml in name order; missing folders are skipped.
struct Paths {
  std::vector<std::string> system_dirs;  ///< /etc/weft, $(sysconfdir)/weft
  std::string user_dir;                  ///< $XDG_CONFIG_HOME/weft or ~/.config/weft
  std::string weft_config;               ///< $WEFT_CONFIG: a file or a folder; "" for none
};

/// The standard Paths, from the environment of this process now.
Paths default_paths();

/// Reads files and WEFT_* environment again (default_paths()); keeps
/// set_cli values and live set scopes. On error nothing changes.
void refresh();
/// The same with other places to read (e.g. for tests, or `weft config`).
void refresh(const Paths& paths);

/// Checks one YAML file against the defaults: throws ConfigError
/// "bad-file", "unknown-key" or "bad-value" naming the file.
void validate_file(const std::string& path);

// ---- value syntax, as dask.utils -----------------------------------------

/// "5GB" -> 5000000000, "1 KiB" -> 1024, "1e6" -> 1000000, "MB" -> 1000000.
/// Units are case-insensitive: B, kB/k, MB/M, GB, TB, PB (powers of 1000),
/// KiB/Ki, MiB, GiB, TiB, PiB (powers of 1024); spaces are ignored; a
/// fraction is truncated. Throws ValueError "bad-bytes" naming the text.
std::uint64_t parse_bytes(std::string_view text);

/// Seconds: "500ms" -> 0.5, "3 min" -> 180, "2h" -> 7200, "1 us" -> 1e-6.
/// Units (case-insensitive): ns, us, ms, s, m/min, h, d, w and the words
/// (second(s), minute(s), ...); text without a unit is in `default_unit`.
/// Throws ValueError "bad-timedelta" naming the text.
double parse_timedelta(std::string_view text, std::string_view default_unit = "s");

/// Replaces $NAME and ${NAME} by the environment variable's value, leaving
/// unset ones as they are (os.path.expandvars). File values that are
/// strings go through this when read.
std::string expand_environment_variables(std::string_view text);

/// The spelling of `key` used in the defaults: lower case, '-' for '_'.
std::string canonical_name(std::string_view key);

}  // namespace weft::config
