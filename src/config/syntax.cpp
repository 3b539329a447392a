// Value syntax shared by config and callers: byte sizes and durations as
// dask.utils.parse_bytes / parse_timedelta read them, $VAR expansion as
// os.path.expandvars does it, and key canonicalisation.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "schema.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace weft::config {
namespace {

constexpr std::uint64_t kB = 1000, KiB = 1024;

struct ByteUnit {
  std::string_view name;
  std::uint64_t bytes;
};

// dask.utils.byte_sizes, lower-cased: each unit and its short form ("k" for
// kB, "ki" for KiB).
// clang-format off
constexpr ByteUnit byte_units[] = {
    {"", 1},
    {"b", 1},
    {"kb", kB}, {"k", kB},
    {"mb", kB * kB}, {"m", kB * kB},
    {"gb", kB * kB * kB}, {"g", kB * kB * kB},
    {"tb", kB * kB * kB * kB}, {"t", kB * kB * kB * kB},
    {"pb", kB * kB * kB * kB * kB}, {"p", kB * kB * kB * kB * kB},
    {"kib", KiB}, {"ki", KiB},
    {"mib", KiB * KiB}, {"mi", KiB * KiB},
    {"gib", KiB * KiB * KiB}, {"gi", KiB * KiB * KiB},
    {"tib", KiB * KiB * KiB * KiB}, {"ti", KiB * KiB * KiB * KiB},
    {"pib", KiB * KiB * KiB * KiB * KiB}, {"pi", KiB * KiB * KiB * KiB * KiB},
};
// clang-format on

struct TimeUnit {
  std::string_view name;
  double seconds;
};

// dask.utils.timedelta_sizes, plus "min"/"mins" (the spelling people write).
// clang-format off
constexpr TimeUnit time_units[] = {
    {"ns", 1e-9},  {"nanosecond", 1e-9},  {"nanoseconds", 1e-9},
    {"us", 1e-6},  {"microsecond", 1e-6}, {"microseconds", 1e-6},
    {"ms", 1e-3},  {"millisecond", 1e-3}, {"milliseconds", 1e-3},
    {"s", 1},      {"second", 1},         {"seconds", 1},
    {"m", 60},     {"min", 60},           {"mins", 60}, {"minute", 60}, {"minutes", 60},
    {"h", 3600},   {"hour", 3600},        {"hours", 3600},
    {"d", 86400},  {"day", 86400},        {"days", 86400},
    {"w", 604800}, {"week", 604800},      {"weeks", 604800},
};
// clang-format on

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <class Unit, std::size_t N>
const Unit* find_unit(const Unit (&units)[N], std::string_view name) {
  const std::string key = lower(name);
  auto it = std::find_if(std::begin(units), std::end(units), [&](const Unit& u) { return u.name == key; });
  return it == std::end(units) ? nullptr : it;
}

// The text without white space; text that has no digit at all ("MB", "ms")
// means one of the unit, as in Dask. Empty text stays empty.
std::string compact(std::string_view text) {
  std::string out;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  if (!out.empty() && std::none_of(out.begin(), out.end(),
                                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    out.insert(0, "1");
  return out;
}

// A whole string as a finite double; from_chars does not take a leading '+'.
bool read_number(std::string_view text, double& out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(out);
}

}  // namespace

std::string_view detail::unit_of(std::string_view text) {
  std::size_t start = text.size();
  while (start > 0 && std::isalpha(static_cast<unsigned char>(text[start - 1]))) --start;
  return text.substr(start);
}

std::uint64_t parse_bytes(std::string_view text) {
  const std::string s = compact(text);
  const std::string_view unit_text = detail::unit_of(s);
  const std::string_view number_text = std::string_view(s).substr(0, s.size() - unit_text.size());
  auto fail = [&](const std::string& why) -> std::uint64_t {
    throw ValueError("bad-bytes", "cannot read '" + std::string(text) + "' as a byte size: " + why);
  };
  if (s.empty()) return fail("it is empty");
  const auto* unit = find_unit(byte_units, unit_text);
  if (!unit)
    return fail("'" + std::string(unit_text) +
                "' is not a byte unit (use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB)");
  // Whole numbers are read exactly, so that sizes above 2^53 stay exact.
  std::uint64_t whole = 0;
  auto [end, ec] = std::from_chars(number_text.data(), number_text.data() + number_text.size(), whole);
  if (ec == std::errc() && end == number_text.data() + number_text.size()) {
    if (whole > UINT64_MAX / unit->bytes) return fail("it is larger than 2^64 - 1 bytes");
    return whole * unit->bytes;
  }
  double number = 0;
  if (!read_number(number_text, number)) return fail("'" + std::string(number_text) + "' is not a number");
  const double bytes = number * static_cast<double>(unit->bytes);
  if (bytes < 0) return fail("a byte size cannot be negative");
  if (bytes >= 18446744073709551616.0) return fail("it is larger than 2^64 - 1 bytes");
  return static_cast<std::uint64_t>(bytes);
}

double parse_timedelta(std::string_view text, std::string_view default_unit) {
  const std::string s = compact(text);
  std::string_view unit_text = detail::unit_of(s);
  const std::string_view number_text = std::string_view(s).substr(0, s.size() - unit_text.size());
  auto fail = [&](const std::string& why) -> double {
    throw ValueError("bad-timedelta", "cannot read '" + std::string(text) + "' as a duration: " + why);
  };
  if (s.empty()) return fail("it is empty");
  if (unit_text.empty()) unit_text = default_unit;
  const auto* unit = find_unit(time_units, unit_text);
  if (!unit)
    return fail("'" + std::string(unit_text) +
                "' is not a time unit (use ns, us, ms, s, m or min, h, d, w, or words such as "
                "seconds)");
  double number = 0;
  if (!read_number(number_text, number)) return fail("'" + std::string(number_text) + "' is not a number");
  if (number < 0) return fail("a duration cannot be negative");
  return number * unit->seconds;
}

std::string expand_environment_variables(std::string_view text) {
  auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$' || i + 1 == text.size()) {
      out += text[i++];
      continue;
    }
    // $NAME or ${NAME}; anything else, or an unset variable, stays as written.
    std::size_t name_begin = i + 1;
    std::size_t name_end = name_begin;
    std::size_t after = name_begin;
    if (text[name_begin] == '{') {
      const std::size_t close = text.find('}', name_begin);
      if (close == std::string_view::npos) {
        out += text[i++];
        continue;
      }
      name_begin += 1;
      name_end = close;
      after = close + 1;
    } else {
      while (name_end < text.size() && is_name_char(text[name_end])) ++name_end;
      after = name_end;
    }
    const std::string name(text.substr(name_begin, name_end - name_begin));
    const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
    out += value ? std::string_view(value) : text.substr(i, after - i);
    i = after;
  }
  return out;
}

std::string canonical_name(std::string_view key) {
  std::string out = lower(key);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

}  // namespace weft::config
