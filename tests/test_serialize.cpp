// weft::encode / decode: round trips of every encoding (bytes, string, vector,
// cereal), zero-copy buffers, stable type ids, registration before main(),
// malformed headers and buffers, and types that cannot be serialised.
#include "weft/serialize.hpp"

#include <catch2/catch.hpp>
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "weft/error.hpp"
#include "weft/value.hpp"

using Catch::Matchers::Contains;
using weft::Value;

namespace weft_test_serialize {

struct Pod {
  int a;
  double b;
  char c[3];
  bool operator==(const Pod&) const = default;
};

struct Particle {
  std::string name;
  std::vector<double> position;
  std::map<int, std::string> tags;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, position, tags);
  }
  bool operator==(const Particle&) const = default;
};

struct OwnsPointer {
  std::unique_ptr<int> p;
};
struct HoldsFunction {
  std::function<int(int)> f;
};

// Only ever named by value_type_of<> in a function nobody calls.
struct OnlyInstantiated {
  int x;
};
[[maybe_unused]] const weft::ValueType& never_called() {
  return weft::detail::value_type_of<OnlyInstantiated>();
}

std::uint64_t xxh3_of_name(const std::type_info& type) {
  return XXH3_64bits(type.name(), std::strlen(type.name()));
}

std::vector<std::byte> header_with_id(std::uint64_t id, const void* payload, std::size_t n) {
  std::vector<std::byte> h(sizeof id + n);
  std::memcpy(h.data(), &id, sizeof id);
  if (n) std::memcpy(h.data() + sizeof id, payload, n);
  return h;
}

Value decode(const weft::Encoded& e) { return weft::decode(e.header, e.buffers); }

template <class T>
T round_trip(const T& original) {
  static_assert(weft::is_serializable_v<T>);
  Value v = Value::of(original);
  CHECK(v.type()->serializable());
  weft::Encoded e = weft::encode(v);
  Value back = decode(e);
  REQUIRE(back.holds<T>());
  return back.take<T>();
}

void check_bad_encoding(std::span<const std::byte> header,
                        std::span<const std::span<const std::byte>> buffers,
                        const std::string& problem) {
  try {
    weft::decode(header, buffers);
    FAIL("decode accepted a malformed encoding");
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.bad-encoding");
    CHECK_THAT(e.text(), Contains(problem));
  }
}

}  // namespace weft_test_serialize

using namespace weft_test_serialize;

TEST_CASE("serialize: trivially copyable values travel in the header", "[serialize]") {
  CHECK(round_trip(42) == 42);
  CHECK(round_trip(-2.5) == -2.5);
  const Pod pod{7, 3.25, {'x', 'y', 'z'}};
  CHECK(round_trip(pod) == pod);
  CHECK(round_trip(weft::None{}) == weft::None{});

  weft::Encoded e = weft::encode(Value::of(pod));
  CHECK(e.buffers.empty());
  CHECK(e.header.size() == sizeof(std::uint64_t) + sizeof(Pod));
  CHECK(weft::encoded_size(e) == e.header.size());
}

TEST_CASE("serialize: strings travel as one buffer pointing at their characters", "[serialize]") {
  CHECK(round_trip(std::string()).empty());

  const std::string big(1 << 20, 'q');
  Value v = Value::of(big);
  weft::Encoded e = weft::encode(v);
  REQUIRE(e.buffers.size() == 1);
  CHECK(static_cast<const void*>(e.buffers[0].data()) == v.get<std::string>().data());
  CHECK(e.buffers[0].size() == big.size());
  CHECK(decode(e).get<std::string>() == big);
}

TEST_CASE("serialize: vectors of trivially copyable elements are sent from their memory",
          "[serialize]") {
  CHECK(round_trip(std::vector<double>()).empty());

  std::vector<double> big(1'000'000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = 0.5 * static_cast<double>(i);
  Value v = Value::of(big);
  weft::Encoded e = weft::encode(v);
  REQUIRE(e.buffers.size() == 1);
  CHECK(static_cast<const void*>(e.buffers[0].data()) == v.get<std::vector<double>>().data());
  CHECK(e.buffers[0].size() == big.size() * sizeof(double));
  CHECK(e.header.size() < 64);
  CHECK(weft::encoded_size(e) == e.header.size() + big.size() * sizeof(double));
  CHECK(decode(e).get<std::vector<double>>() == big);

  const std::vector<Pod> pods{{1, 1.5, {'a', 'b', 'c'}}, {2, 2.5, {'d', 'e', 'f'}}};
  CHECK(round_trip(pods) == pods);
}

TEST_CASE("serialize: std containers and user types go through cereal", "[serialize]") {
  const std::vector<std::string> words{"alpha", "", "gamma"};
  CHECK(round_trip(words) == words);

  const std::map<std::string, std::vector<int>> m{{"a", {1, 2, 3}}, {"b", {}}, {"c", {-4}}};
  CHECK(round_trip(m) == m);

  const std::pair<int, std::string> p{3, "three"};
  CHECK(round_trip(p) == p);
  const std::tuple<int, double, std::string> t{1, 2.5, "x"};
  CHECK(round_trip(t) == t);

  const Particle particle{"electron", {0.1, -0.2, 0.3}, {{1, "charged"}, {2, "light"}}};
  CHECK(round_trip(particle) == particle);
  const std::vector<Particle> particles{particle, Particle{}};
  CHECK(round_trip(particles) == particles);

  weft::Encoded e = weft::encode(Value::of(particle));
  CHECK(e.buffers.empty());
}

TEST_CASE("serialize: the type id is XXH3-64 of the mangled type name", "[serialize]") {
  const std::uint64_t id = weft::detail::value_type_of<std::vector<double>>().type_id;
  CHECK(id == xxh3_of_name(typeid(std::vector<double>)));
  CHECK(weft::detail::stable_type_id(typeid(std::vector<double>)) == id);

  weft::Encoded first = weft::encode(Value::of(std::vector<double>{1.0}));
  weft::Encoded second = weft::encode(Value::of(std::vector<double>{2.0, 3.0}));
  std::uint64_t in_first, in_second;
  std::memcpy(&in_first, first.header.data(), sizeof in_first);
  std::memcpy(&in_second, second.header.data(), sizeof in_second);
  CHECK(in_first == id);
  CHECK(in_second == id);
  CHECK(weft::detail::value_type_of<int>().type_id != id);
}

TEST_CASE("serialize: every instantiated type is registered before main", "[serialize]") {
  // No code has called value_type_of<OnlyInstantiated>() or made such a Value:
  // a header built by hand still decodes, as on a rank that never produced one.
  const OnlyInstantiated original{99};
  std::vector<std::byte> header =
      header_with_id(xxh3_of_name(typeid(OnlyInstantiated)), &original, sizeof original);
  Value v = weft::decode(header, {});
  REQUIRE(v.has_value());
  CHECK(*v.type()->type == typeid(OnlyInstantiated));
  CHECK(v.get<OnlyInstantiated>().x == 99);
}

TEST_CASE("serialize: an unknown type id is a TypeError", "[serialize]") {
  const int payload = 1;
  std::vector<std::byte> header = header_with_id(0x0123456789abcdefULL, &payload, sizeof payload);
  try {
    weft::decode(header, {});
    FAIL("decode accepted an unknown type id");
  } catch (const weft::TypeError& e) {
    CHECK(e.id() == "type.unknown-type");
    CHECK_THAT(e.text(), Contains("0x0123456789abcdef"));
  }
}

TEST_CASE("serialize: malformed headers and buffers are ValueErrors", "[serialize]") {
  SECTION("a header too short for the type id") {
    const std::byte three[3]{};
    check_bad_encoding(three, {}, "too short to hold a type id");
    check_bad_encoding({}, {}, "too short to hold a type id");
  }
  SECTION("a trivially copyable value cut short or with extra bytes") {
    weft::Encoded e = weft::encode(Value::of(Pod{1, 2.0, {}}));
    std::span<const std::byte> h = e.header;
    check_bad_encoding(h.first(h.size() - 1), {}, "ends 1 bytes early");
    e.header.push_back(std::byte{0});
    check_bad_encoding(e.header, {}, "1 bytes too many");
  }
  SECTION("a vector whose buffer has the wrong size, or is missing") {
    const Value held = Value::of(std::vector<double>{1.0, 2.0, 3.0});  // buffers point into it
    weft::Encoded e = weft::encode(held);
    const std::span<const std::byte> short_buffer[] = {e.buffers[0].first(16)};
    check_bad_encoding(e.header, short_buffer, "holds 16 bytes where the header says 24");
    check_bad_encoding(e.header, {}, "buffer 1 is missing");
    const std::span<const std::byte> two[] = {e.buffers[0], e.buffers[0]};
    check_bad_encoding(e.header, two, "2 buffers were given where 1 are expected");
  }
  SECTION("a vector count too large for memory") {
    const std::uint64_t count = UINT64_MAX / 4;
    std::vector<std::byte> header = header_with_id(
        weft::detail::value_type_of<std::vector<double>>().type_id, &count, sizeof count);
    check_bad_encoding(header, {}, "does not fit in memory");
  }
  SECTION("a string buffer that is a byte short") {
    const Value held = Value::of(std::string("hello"));  // buffers point into it
    weft::Encoded e = weft::encode(held);
    const std::span<const std::byte> buffers[] = {e.buffers[0].first(4)};
    check_bad_encoding(e.header, buffers, "holds 4 bytes where the header says 5");
  }
  SECTION("cereal bytes cut short or with extra bytes") {
    const std::map<std::string, std::vector<int>> m{{"key", {1, 2, 3}}};
    weft::Encoded e = weft::encode(Value::of(m));
    std::span<const std::byte> h = e.header;
    check_bad_encoding(h.first(h.size() - 2), {}, "Failed to read");
    e.header.push_back(std::byte{7});
    check_bad_encoding(e.header, {}, "1 bytes of the header unread");
  }
}

TEST_CASE("serialize: types that cannot be serialised are refused, naming them", "[serialize]") {
  STATIC_REQUIRE_FALSE(weft::is_serializable_v<OwnsPointer>);
  STATIC_REQUIRE_FALSE(weft::is_serializable_v<HoldsFunction>);
  STATIC_REQUIRE_FALSE(weft::is_serializable_v<std::vector<HoldsFunction>>);
  STATIC_REQUIRE_FALSE(weft::is_serializable_v<std::map<int, std::function<void()>>>);
  STATIC_REQUIRE(weft::is_serializable_v<std::vector<Particle>>);
  STATIC_REQUIRE(weft::is_serializable_v<std::tuple<int, std::vector<std::string>>>);

  Value v = Value::of(HoldsFunction{[](int x) { return x + 1; }});
  CHECK_FALSE(v.type()->serializable());
  try {
    weft::encode(v);
    FAIL("encode accepted a std::function");
  } catch (const weft::TypeError& e) {
    CHECK(e.id() == "type.not-serializable");
    CHECK_THAT(e.text(), Contains("weft_test_serialize::HoldsFunction"));
    CHECK_THAT(e.text(), Contains("serialize(Archive& ar)"));
  }
  Value p = Value::make<OwnsPointer>(OwnsPointer{std::make_unique<int>(1)});
  CHECK_THROWS_AS(weft::encode(p), weft::TypeError);
}

TEST_CASE("serialize: an empty Value cannot be encoded", "[serialize]") {
  try {
    weft::encode(Value());
    FAIL("encode accepted an empty Value");
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.empty");
  }
}
