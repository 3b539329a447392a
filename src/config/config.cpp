// weft::config: the layers (defaults, files, environment, command line, set
// scopes) and the merged view that reads go to.
//
// Every layer is a list of checked entries. Any change (refresh, a set scope
// starting or ending, set_cli) rebuilds one flat hash map from dotted key to
// entry under an exclusive lock and bumps the generation; reads take a shared
// lock and do one hash probe, without allocating. The config is a few dozen
// keys, so rebuilding it whole is cheaper than tracking what changed.
#include "weft/config.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <shared_mutex>

#include "schema.hpp"
#include "sources.hpp"
#include "weft/error.hpp"

namespace weft::config {

namespace detail {
// Generated from src/config/weft.yaml (built_in.cpp).
extern const char built_in_defaults[];
}  // namespace detail

namespace {

using detail::Entry;
using detail::Layer;
using detail::Scalar;

const detail::Schema& schema() {
  static const detail::Schema parsed(detail::built_in_defaults);
  return parsed;
}

const std::string set_source = "weft::config::set";

struct State {
  std::shared_mutex mutex;
  std::vector<Layer> files;
  Layer environment;
  Layer cli;
  std::vector<std::pair<std::uint64_t, Layer>> scopes;  // oldest first
  std::uint64_t next_scope = 1;
  detail::EntryMap merged;
  std::atomic<bool> loaded{false};
  std::atomic<std::uint64_t> generation{0};

  // Rebuilds `merged`, lowest precedence first; the caller holds `mutex`
  // exclusively.
  void merge() {
    detail::EntryMap out;
    auto apply = [&](const Layer& layer) {
      for (const auto& [key, entry] : layer) out.insert_or_assign(key, entry);
    };
    apply(schema().defaults());
    for (const auto& layer : files) apply(layer);
    apply(environment);
    apply(cli);
    for (const auto& [id, layer] : scopes) apply(layer);
    merged.swap(out);
    generation.fetch_add(1, std::memory_order_release);
  }
};

State& state() {
  static State instance;
  return instance;
}

void ensure_loaded() {
  if (!state().loaded.load(std::memory_order_acquire)) refresh();
}

std::string describe(const Scalar& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::monostate>)
          return "null";
        else if constexpr (std::is_same_v<V, bool>)
          return v ? "true" : "false";
        else if constexpr (std::is_same_v<V, std::string>)
          return "'" + v + "'";
        else if constexpr (std::is_same_v<V, double>)
          return detail::double_text(v);
        else
          return std::to_string(v);
      },
      value);
}

[[noreturn]] void mismatch(const std::string& key, const Entry& entry, std::string_view wanted) {
  throw ConfigError("type-mismatch", "'" + key + "' is " + describe(entry.value) + " (from " + entry.source +
                                         "), not " + std::string(wanted));
}

// Calls read(key, entry) with the current entry of `key` under a shared lock.
template <class Read>
auto with_entry(std::string_view key, Read&& read) {
  ensure_loaded();
  State& st = state();
  std::shared_lock lock(st.mutex);
  auto it = st.merged.find(key);
  if (it == st.merged.end()) it = st.merged.find(schema().known_key(key, ""));  // throws when unknown
  return read(it->first, it->second);
}

void emit(YAML::Emitter& out, const Scalar& value) {
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::monostate>) {
          out << YAML::Null;
        } else if constexpr (std::is_same_v<V, std::string>) {
          // Quote text that would read back as another type ("true", "5").
          if (!std::holds_alternative<std::string>(detail::resolve(v))) out << YAML::DoubleQuoted;
          out << v;
        } else if constexpr (std::is_same_v<V, double>) {
          out << detail::double_text(v);  // yaml-cpp would print 0.1 as 0.10000000000000001
        } else {
          out << v;
        }
      },
      value);
}

void emit(YAML::Emitter& out, const YAML::Node& defaults, const std::string& prefix,
          const detail::EntryMap& merged) {
  out << YAML::BeginMap;
  for (const auto& item : defaults) {
    const std::string& name = item.first.Scalar();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    out << YAML::Key << name << YAML::Value;
    if (item.second.IsMap())
      emit(out, item.second, key, merged);
    else
      emit(out, merged.at(key).value);
  }
  out << YAML::EndMap;
}

// The value of an entry as a T, or a type-mismatch error.
template <class T>
T value_as(const std::string& name, const Entry& e);

template <>
bool value_as<bool>(const std::string& name, const Entry& e) {
  if (const auto* b = std::get_if<bool>(&e.value)) return *b;
  mismatch(name, e, "a bool");
}

template <>
std::int64_t value_as<std::int64_t>(const std::string& name, const Entry& e) {
  if (const auto* i = std::get_if<std::int64_t>(&e.value)) return *i;
  mismatch(name, e, "an integer");
}

template <>
int value_as<int>(const std::string& name, const Entry& e) {
  const auto* i = std::get_if<std::int64_t>(&e.value);
  if (i && *i >= std::numeric_limits<int>::min() && *i <= std::numeric_limits<int>::max())
    return static_cast<int>(*i);
  mismatch(name, e, i ? "an int (it is out of range)" : "an integer");
}

template <>
double value_as<double>(const std::string& name, const Entry& e) {
  if (const auto* d = std::get_if<double>(&e.value)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&e.value)) return static_cast<double>(*i);
  mismatch(name, e, "a number");
}

template <>
std::string value_as<std::string>(const std::string& name, const Entry& e) {
  if (const auto* s = std::get_if<std::string>(&e.value)) return *s;
  mismatch(name, e, "a string");
}

template <class T>
std::optional<T> optional_as(const std::string& name, const Entry& e) {
  if (std::holds_alternative<std::monostate>(e.value)) return std::nullopt;
  return value_as<T>(name, e);
}

}  // namespace

template <>
bool get<bool>(std::string_view key) {
  return with_entry(key, value_as<bool>);
}
template <>
int get<int>(std::string_view key) {
  return with_entry(key, value_as<int>);
}
template <>
std::int64_t get<std::int64_t>(std::string_view key) {
  return with_entry(key, value_as<std::int64_t>);
}
template <>
double get<double>(std::string_view key) {
  return with_entry(key, value_as<double>);
}
template <>
std::string get<std::string>(std::string_view key) {
  return with_entry(key, value_as<std::string>);
}

template <>
std::optional<bool> get_optional<bool>(std::string_view key) {
  return with_entry(key, optional_as<bool>);
}
template <>
std::optional<int> get_optional<int>(std::string_view key) {
  return with_entry(key, optional_as<int>);
}
template <>
std::optional<std::int64_t> get_optional<std::int64_t>(std::string_view key) {
  return with_entry(key, optional_as<std::int64_t>);
}
template <>
std::optional<double> get_optional<double>(std::string_view key) {
  return with_entry(key, optional_as<double>);
}
template <>
std::optional<std::string> get_optional<std::string>(std::string_view key) {
  return with_entry(key, optional_as<std::string>);
}

bool is_null(std::string_view key) {
  return with_entry(key, [](const std::string&, const Entry& e) {
    return std::holds_alternative<std::monostate>(e.value);
  });
}

std::uint64_t get_bytes(std::string_view key) {
  return with_entry(key, [](const std::string& name, const Entry& e) -> std::uint64_t {
    if (e.bytes) return *e.bytes;
    // A key whose default is null may hold a size too.
    if (const auto* i = std::get_if<std::int64_t>(&e.value); i && *i >= 0)
      return static_cast<std::uint64_t>(*i);
    if (const auto* s = std::get_if<std::string>(&e.value)) {
      try {
        return parse_bytes(*s);
      } catch (const ValueError& x) {
        throw ConfigError("bad-value", "bad value for '" + name + "' in " + e.source + ": " + x.text());
      }
    }
    mismatch(name, e, "a byte size");
  });
}

double get_seconds(std::string_view key) {
  return with_entry(key, [](const std::string& name, const Entry& e) -> double {
    if (e.seconds) return *e.seconds;
    if (const auto* s = std::get_if<std::string>(&e.value)) {
      try {
        return parse_timedelta(*s);
      } catch (const ValueError& x) {
        throw ConfigError("bad-value", "bad value for '" + name + "' in " + e.source + ": " + x.text());
      }
    }
    const auto* i = std::get_if<std::int64_t>(&e.value);
    const auto* d = std::get_if<double>(&e.value);
    if (i && *i >= 0) return static_cast<double>(*i);
    if (d && *d >= 0) return *d;
    mismatch(name, e, "a duration");
  });
}

std::string source_of(std::string_view key) {
  return with_entry(key, [](const std::string&, const Entry& e) { return e.source; });
}

std::uint64_t generation() {
  ensure_loaded();
  return state().generation.load(std::memory_order_acquire);
}

std::string dump_yaml() {
  ensure_loaded();
  State& st = state();
  std::shared_lock lock(st.mutex);
  YAML::Emitter out;
  out.SetNullFormat(YAML::LowerNull);
  emit(out, schema().tree(), "", st.merged);
  return std::string(out.c_str()) + "\n";
}

std::string_view defaults_yaml() { return detail::built_in_defaults; }

void SettingValue::throw_too_large(std::uint64_t i) {
  throw ConfigError("bad-value",
                    "integer " + std::to_string(i) + " is larger than 2^63 - 1, the largest config integer");
}

set::set(std::initializer_list<std::pair<std::string_view, SettingValue>> items) {
  Layer layer;
  for (const auto& [key, value] : items) {
    const std::string name = schema().known_key(key, set_source);
    layer.emplace_back(name, schema().from_value(name, value, set_source));
  }
  State& st = state();
  std::unique_lock lock(st.mutex);
  id_ = st.next_scope++;
  st.scopes.emplace_back(id_, std::move(layer));
  st.merge();
}

set::set(std::string_view key, SettingValue value) : set({{key, std::move(value)}}) {}

set::~set() {
  State& st = state();
  std::unique_lock lock(st.mutex);
  std::erase_if(st.scopes, [&](const auto& scope) { return scope.first == id_; });
  st.merge();
}

void set_cli(std::string_view key, std::string_view text, std::string_view flag) {
  const std::string source = flag.empty() ? "command line" : "command-line flag " + std::string(flag);
  const std::string name = schema().known_key(key, source);
  Entry entry = schema().from_text(name, text, source);
  State& st = state();
  std::unique_lock lock(st.mutex);
  std::erase_if(st.cli, [&](const auto& item) { return item.first == name; });
  st.cli.emplace_back(name, std::move(entry));
  st.merge();
}

void clear_cli() {
  State& st = state();
  std::unique_lock lock(st.mutex);
  st.cli.clear();
  st.merge();
}

void refresh() { refresh(default_paths()); }

void refresh(const Paths& paths) {
  std::vector<Layer> files = detail::read_files(schema(), paths);
  Layer environment = detail::read_environment(schema());
  State& st = state();
  std::unique_lock lock(st.mutex);
  st.files = std::move(files);
  st.environment = std::move(environment);
  st.merge();
  st.loaded.store(true, std::memory_order_release);
}

void validate_file(const std::string& path) { detail::read_file(schema(), path); }

}  // namespace weft::config
