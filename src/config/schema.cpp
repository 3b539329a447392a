// The schema of weft's configuration: which keys exist and what each holds,
// read from the defaults file, and the checks that turn YAML nodes, text and
// values given in code into entries.
#include "schema.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

#include "weft/error.hpp"

namespace weft::config::detail {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool one_of(std::string_view text, std::initializer_list<std::string_view> words) {
  return std::any_of(words.begin(), words.end(), [&](std::string_view w) { return iequals(text, w); });
}

// Whole of `text` as a number; `base` is the integer base, if any.
template <class T, class... Base>
bool read_whole(std::string_view text, T& out, Base... base) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base...);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Scalar resolve(std::string_view text) {
  if (text.empty() || text == "~" || iequals(text, "null")) return std::monostate{};
  if (one_of(text, {"true", "yes", "on"})) return true;
  if (one_of(text, {"false", "no", "off"})) return false;
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  std::int64_t i = 0;
  if (read_whole(digits, i)) return i;
  if (digits.starts_with("0x") && read_whole(digits.substr(2), i, 16)) return i;
  if (digits.starts_with("0o") && read_whole(digits.substr(2), i, 8)) return i;
  double d = 0;
  if (std::any_of(digits.begin(), digits.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
      read_whole(digits, d))
    return d;
  return std::string(text);
}

std::string double_text(double value) {
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, end);
  if (text.find_first_not_of("-0123456789") == std::string::npos) text += ".0";  // not an integer
  return text;
}

namespace {

// What a default's value makes of its key (the rules at the head of weft.yaml).
Kind kind_of_default(const YAML::Node& node) {
  if (node.IsNull()) return Kind::any;
  if (node.Tag() != "?") return Kind::string;
  const Scalar value = resolve(node.Scalar());
  if (std::holds_alternative<bool>(value)) return Kind::boolean;
  if (std::holds_alternative<std::int64_t>(value)) return Kind::integer;
  if (std::holds_alternative<double>(value)) return Kind::floating;
  const std::string& text = node.Scalar();
  const std::string_view unit = unit_of(text);
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text.front())) || unit.empty())
    return Kind::string;
  auto parses = [](auto&& parse) {
    try {
      parse();
      return true;
    } catch (const ValueError&) {
      return false;
    }
  };
  if (std::tolower(static_cast<unsigned char>(unit.back())) == 'b' && parses([&] { parse_bytes(text); }))
    return Kind::bytes;
  if (parses([&] { parse_timedelta(text); })) return Kind::duration;
  return Kind::string;
}

std::string expectation(Kind kind) {
  switch (kind) {
    case Kind::any:
      return "a scalar";
    case Kind::boolean:
      return "a bool (true or false)";
    case Kind::integer:
      return "an integer";
    case Kind::floating:
      return "a number";
    case Kind::string:
      return "a string";
    case Kind::bytes:
      return "a byte size such as 128MiB";
    case Kind::duration:
      return "a duration such as 100ms";
  }
  return {};
}

std::string in_source(const std::string& source) { return source.empty() ? "" : " in " + source; }

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

Schema::Schema(std::string_view defaults_text) {
  try {
    tree_ = YAML::Load(std::string(defaults_text));
  } catch (const YAML::Exception& e) {
    throw ConfigError("bad-file", "the built-in defaults are not valid YAML: " + std::string(e.what()));
  }
  if (!tree_.IsMap()) throw ConfigError("bad-file", "the built-in defaults are not a mapping of keys");
  add_defaults(tree_, "");
}

void Schema::add_defaults(const YAML::Node& node, const std::string& prefix) {
  for (const auto& item : node) {
    const std::string& name = item.first.Scalar();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (name.empty() || canonical_name(name) != name || name.find('.') != std::string::npos)
      throw ConfigError("bad-file", "the built-in defaults have key '" + key +
                                        "': keys are lower case, with '-' between words");
    if (item.second.IsMap()) {
      sections_.insert(key);
      add_defaults(item.second, key);
    } else if (item.second.IsSequence()) {
      throw ConfigError("bad-file", "the built-in defaults give a list for '" + key + "': keys hold scalars");
    } else {
      kinds_.emplace(key, kind_of_default(item.second));
      defaults_.emplace_back(key, from_node(key, item.second, "defaults"));
    }
  }
}

std::string Schema::known_key(std::string_view key, const std::string& source) const {
  std::string name = canonical_name(key);
  if (kinds_.count(name)) return name;
  if (sections_.count(name))
    throw ConfigError("unknown-key", "'" + name + "'" + in_source(source) +
                                         " is a section, not a key; its keys are " + keys_under(name));
  // The nearest known name: a small edit away, or the full name of a tail.
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, name.size() / 4) + 1;
  auto consider = [&](const std::string& candidate) {
    const std::size_t d = candidate.ends_with("." + name) ? 1 : edit_distance(name, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  };
  for (const auto& [leaf, kind] : kinds_) consider(leaf);
  for (const auto& section : sections_) consider(section);
  throw ConfigError("unknown-key", "unknown key '" + name + "'" + in_source(source) +
                                       (best.empty() ? "" : " (did you mean '" + best + "'?)"));
}

std::string Schema::keys_under(std::string_view key) const {
  std::string out;
  const std::string prefix = std::string(key) + ".";
  for (const auto& [leaf, entry] : defaults_) {
    if (!leaf.starts_with(prefix)) continue;
    out += (out.empty() ? "'" : ", '") + leaf + "'";
  }
  return out;
}

Entry Schema::from_scalar(const std::string& key, const Scalar& value, const std::string& written,
                          const std::string& source) const {
  const Kind kind = kinds_.at(key);
  const bool null = std::holds_alternative<std::monostate>(value);
  auto bad = [&](const std::string& why) {
    throw ConfigError("bad-value", "bad value for '" + key + "'" + in_source(source) + ": " + why);
  };
  auto expected = [&] {
    bad("expected " + expectation(kind) + ", got " + (null ? "null" : "'" + written + "'"));
  };
  Entry entry;
  entry.source = source;
  entry.value = value;
  try {
    switch (kind) {
      case Kind::any:
        break;
      case Kind::boolean:
        if (!std::holds_alternative<bool>(value)) expected();
        break;
      case Kind::integer:
        if (!std::holds_alternative<std::int64_t>(value)) expected();
        break;
      case Kind::floating:
        if (const auto* i = std::get_if<std::int64_t>(&value))
          entry.value = static_cast<double>(*i);
        else if (!std::holds_alternative<double>(value))
          expected();
        break;
      case Kind::string:
        if (null) expected();
        entry.value = written;  // any scalar, as written: "1.50" stays "1.50"
        break;
      case Kind::bytes:
        if (null || std::holds_alternative<bool>(value)) expected();
        entry.bytes = parse_bytes(written);
        entry.value = written;
        break;
      case Kind::duration:
        if (null || std::holds_alternative<bool>(value)) expected();
        entry.seconds = parse_timedelta(written);
        entry.value = written;
        break;
    }
  } catch (const ValueError& e) {
    bad(e.text());
  }
  return entry;
}

Entry Schema::from_node(const std::string& key, const YAML::Node& node, const std::string& source) const {
  if (node.IsNull()) return from_scalar(key, std::monostate{}, "null", source);
  if (!node.IsScalar()) {
    throw ConfigError("bad-value", "bad value for '" + key + "'" + in_source(source) + ": expected " +
                                       expectation(kinds_.at(key)) + ", got a " +
                                       (node.IsMap() ? "mapping" : "list"));
  }
  const std::string text = expand_environment_variables(node.Scalar());
  return from_scalar(key, node.Tag() == "?" ? resolve(text) : Scalar(text), text, source);
}

Entry Schema::from_text(const std::string& key, std::string_view text, const std::string& source) const {
  const std::string written(text);
  // Read as YAML so that quotes work as in a file; text that is not one YAML
  // scalar ("a: b", "[1") stays text, as Dask keeps what literal_eval rejects.
  try {
    const YAML::Node node = YAML::Load(written);
    if (node.IsNull()) return from_scalar(key, std::monostate{}, written, source);
    if (node.IsScalar())
      return from_scalar(key, node.Tag() == "?" ? resolve(node.Scalar()) : Scalar(node.Scalar()),
                         node.Scalar(), source);
  } catch (const YAML::Exception&) {
  }
  return from_scalar(key, written, written, source);
}

Entry Schema::from_value(const std::string& key, const SettingValue& value, const std::string& source) const {
  return std::visit(
      [&](const auto& v) -> Entry {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::string>) {
          return from_text(key, v, source);
        } else if constexpr (std::is_same_v<V, bool>) {
          return from_scalar(key, v, v ? "true" : "false", source);
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          return from_scalar(key, v, std::to_string(v), source);
        } else {
          return from_scalar(key, v, double_text(v), source);
        }
      },
      value.scalar());
}

Layer Schema::from_document(const YAML::Node& root, const std::string& source) const {
  Layer out;
  if (root.IsNull()) return out;
  if (!root.IsMap())
    throw ConfigError("bad-file", source + ": expected a mapping of keys, got a " +
                                      (root.IsSequence() ? "list" : "scalar"));
  for (const auto& item : root) flatten(item.second, canonical_name(item.first.Scalar()), source, out);
  return out;
}

void Schema::flatten(const YAML::Node& node, const std::string& key, const std::string& source,
                     Layer& out) const {
  if (kinds_.count(key)) {
    out.emplace_back(key, from_node(key, node, source));
    return;
  }
  // Descend into unknown sections too, so that the error names a whole key
  // ("optimisation.fuse.active") and can suggest the right one.
  if (node.IsMap() && node.size() > 0) {
    for (const auto& item : node)
      flatten(item.second, key + "." + canonical_name(item.first.Scalar()), source, out);
    return;
  }
  if (sections_.count(key)) {
    if (node.IsNull() || node.IsMap()) return;  // an empty section
    throw ConfigError("bad-value", "bad value for '" + key + "'" + in_source(source) +
                                       ": it is a section (keys " + keys_under(key) + "), got " +
                                       (node.IsScalar() ? "'" + node.Scalar() + "'" : "a list"));
  }
  known_key(key, source);  // throws: unknown key
}

}  // namespace weft::config::detail
