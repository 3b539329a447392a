// weft::Value: making, reading and taking values, inline and heap storage,
// moves, clone, move-only types, type errors, nbytes, and object lifetimes.
#include "weft/value.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "weft/error.hpp"

using Catch::Matchers::Contains;
using weft::Value;

namespace weft_test_value {

// Counts constructions and destructions of each instantiation, so tests can
// check that every object a Value makes is destroyed exactly once.
struct Counts {
  int constructed = 0;
  int destroyed = 0;
  int live() const { return constructed - destroyed; }
};

template <std::size_t Pad>
struct Tracked {
  static inline Counts counts;
  int value;
  std::array<char, Pad> pad{};

  explicit Tracked(int v) : value(v) { ++counts.constructed; }
  Tracked(const Tracked& o) : value(o.value), pad(o.pad) { ++counts.constructed; }
  Tracked(Tracked&& o) noexcept : value(o.value), pad(o.pad) {
    o.value = -1;
    ++counts.constructed;
  }
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() { ++counts.destroyed; }
};
using SmallTracked = Tracked<8>;    // fits the inline buffer
using BigTracked = Tracked<1024>;   // a 1 KB object: lives on the heap

struct Kilobyte {
  std::array<unsigned char, 1024> bytes{};
};

struct ThrowingMove {  // small, but a move that may throw cannot live inline
  int v = 0;
  ThrowingMove() = default;
  ThrowingMove(const ThrowingMove&) = default;
  ThrowingMove(ThrowingMove&& o) noexcept(false) : v(o.v) {}
};

struct alignas(64) OverAligned {
  double d = 0;
};

struct Sized {
  std::size_t nbytes() const { return 12345; }
};

struct CustomSize {
  int v = 0;
};

struct BigMoveOnly {
  std::unique_ptr<int> p;
  std::array<char, 100> pad{};
};

}  // namespace weft_test_value

template <>
struct weft::SizeOf<weft_test_value::CustomSize> {
  static std::size_t apply(const weft_test_value::CustomSize& c) { return 1000 + static_cast<std::size_t>(c.v); }
};

using namespace weft_test_value;

TEST_CASE("Value make, of, get, holds", "[value]") {
  Value empty;
  CHECK_FALSE(empty.has_value());
  CHECK(empty.type() == nullptr);
  CHECK_FALSE(empty.holds<int>());
  CHECK(empty.type_name() == "<empty>");
  CHECK(empty.nbytes() == 0);

  Value i = Value::of(42);
  REQUIRE(i.has_value());
  CHECK(i.holds<int>());
  CHECK_FALSE(i.holds<long>());
  CHECK_FALSE(i.holds<double>());
  CHECK(i.get<int>() == 42);
  CHECK(i.type_name() == "int");
  CHECK(*i.type()->type == typeid(int));
  i.get<int>() = 7;
  const Value& ci = i;
  CHECK(ci.get<int>() == 7);

  Value s = Value::make<std::string>(3, 'a');
  CHECK(s.get<std::string>() == "aaa");
  Value v = Value::make<std::vector<int>>(std::vector<int>{1, 2, 3});
  CHECK(v.get<std::vector<int>>() == std::vector<int>{1, 2, 3});

  std::string original = "kept";
  Value copied = Value::of(original);
  CHECK(original == "kept");
  CHECK(copied.get<std::string>() == "kept");
  std::string long_text(100, 'z');  // long enough to own a heap buffer
  const char* buffer = long_text.data();
  Value moved = Value::of(std::move(long_text));
  CHECK(moved.get<std::string>().data() == buffer);

  Value none = Value::make<weft::None>();
  CHECK(none.holds<weft::None>());
}

TEST_CASE("small values live inline, large ones on the heap", "[value]") {
  STATIC_REQUIRE(Value::fits_inline<double>);
  STATIC_REQUIRE(Value::fits_inline<std::string>);
  STATIC_REQUIRE(Value::fits_inline<std::vector<double>>);
  STATIC_REQUIRE(Value::fits_inline<std::unique_ptr<int>>);
  STATIC_REQUIRE(Value::fits_inline<SmallTracked>);
  STATIC_REQUIRE_FALSE(Value::fits_inline<BigTracked>);
  STATIC_REQUIRE_FALSE(Value::fits_inline<Kilobyte>);
  STATIC_REQUIRE_FALSE(Value::fits_inline<ThrowingMove>);
  STATIC_REQUIRE_FALSE(Value::fits_inline<OverAligned>);

  CHECK(Value::of(1.5).type()->stored_inline);
  CHECK(Value::of(std::string("s")).type()->stored_inline);

  Kilobyte k;
  for (std::size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<unsigned char>(i);
  Value big = Value::of(k);
  CHECK_FALSE(big.type()->stored_inline);
  CHECK(big.get<Kilobyte>().bytes == k.bytes);
  Value big2 = std::move(big);
  CHECK(big2.get<Kilobyte>().bytes == k.bytes);

  Value throwing = Value::of(ThrowingMove{});
  CHECK_FALSE(throwing.type()->stored_inline);
  CHECK(throwing.holds<ThrowingMove>());

  Value aligned = Value::of(OverAligned{2.5});
  CHECK_FALSE(aligned.type()->stored_inline);
  CHECK(reinterpret_cast<std::uintptr_t>(&aligned.get<OverAligned>()) % 64 == 0);
  CHECK(aligned.get<OverAligned>().d == 2.5);
}

TEST_CASE("moving a Value leaves the source empty", "[value]") {
  auto make = GENERATE(as<std::string>{}, "inline", "heap");
  INFO(make);
  Value a = make == "inline" ? Value::of(std::string("payload")) : Value::of(Kilobyte{});
  const weft::ValueType* type = a.type();

  Value b = std::move(a);
  CHECK_FALSE(a.has_value());  // NOLINT(bugprone-use-after-move): the point of the test
  CHECK(b.type() == type);

  Value c;
  c = std::move(b);
  CHECK_FALSE(b.has_value());  // NOLINT(bugprone-use-after-move)
  CHECK(c.type() == type);
  if (make == "inline") CHECK(c.get<std::string>() == "payload");

  Value& alias = c;
  c = std::move(alias);  // self-move keeps the value
  CHECK(c.type() == type);
}

TEST_CASE("take moves the object out and empties the Value", "[value]") {
  Value v = Value::of(std::vector<double>(10, 1.5));
  const double* data = v.get<std::vector<double>>().data();
  std::vector<double> out = v.take<std::vector<double>>();
  CHECK_FALSE(v.has_value());
  CHECK(out.size() == 10);
  CHECK(out.data() == data);  // moved, not copied

  Value big = Value::of(Kilobyte{});
  Kilobyte k = big.take<Kilobyte>();
  CHECK_FALSE(big.has_value());
  CHECK(k.bytes[0] == 0);
}

TEST_CASE("clone makes an independent deep copy", "[value]") {
  SECTION("inline") {
    Value a = Value::of(std::vector<int>{1, 2, 3});
    Value b = a.clone();
    b.get<std::vector<int>>().push_back(4);
    CHECK(a.get<std::vector<int>>() == std::vector<int>{1, 2, 3});
    CHECK(b.get<std::vector<int>>() == std::vector<int>{1, 2, 3, 4});
    CHECK(b.type() == a.type());
  }
  SECTION("heap") {
    Kilobyte k;
    k.bytes[5] = 5;
    Value a = Value::of(k);
    Value b = a.clone();
    b.get<Kilobyte>().bytes[5] = 9;
    CHECK(a.get<Kilobyte>().bytes[5] == 5);
    CHECK(b.get<Kilobyte>().bytes[5] == 9);
    CHECK(&a.get<Kilobyte>() != &b.get<Kilobyte>());
  }
  SECTION("empty") {
    Value empty;
    CHECK_FALSE(empty.clone().has_value());
  }
}

TEST_CASE("move-only values work but cannot be cloned", "[value]") {
  Value v = Value::of(std::make_unique<int>(5));
  CHECK(v.holds<std::unique_ptr<int>>());
  CHECK(*v.get<std::unique_ptr<int>>() == 5);
  Value w = std::move(v);
  CHECK(*w.get<std::unique_ptr<int>>() == 5);

  CHECK_THROWS_AS(w.clone(), weft::TypeError);
  try {
    (void)w.clone();
    FAIL("clone of a unique_ptr did not throw");
  } catch (const weft::TypeError& e) {
    CHECK(e.id() == "type.not-copyable");
    CHECK_THAT(e.what(), Contains("std::unique_ptr<int"));
  }
  // The failed clone left the original alone.
  REQUIRE(w.has_value());
  std::unique_ptr<int> p = w.take<std::unique_ptr<int>>();
  CHECK(*p == 5);

  Value heap = Value::of(BigMoveOnly{std::make_unique<int>(8), {}});
  CHECK_FALSE(heap.type()->stored_inline);
  Value heap2 = std::move(heap);
  CHECK(*heap2.get<BigMoveOnly>().p == 8);
  CHECK_THROWS_AS(heap2.clone(), weft::TypeError);
}

TEST_CASE("reading a Value as the wrong type is a TypeError naming both types", "[value]") {
  Value v = Value::of(1);
  CHECK_THROWS_AS(v.get<double>(), weft::TypeError);
  try {
    (void)v.get<double>();
    FAIL("no exception");
  } catch (const weft::TypeError& e) {
    CHECK(e.id() == "type.wrong-type");
    CHECK_THAT(e.what(), Contains("[weft.type.wrong-type]"));
    CHECK_THAT(e.text(), Contains("'int'"));
    CHECK_THAT(e.text(), Contains("'double'"));
  }
  // take of the wrong type leaves the value in place.
  CHECK_THROWS_AS(v.take<double>(), weft::TypeError);
  CHECK(v.get<int>() == 1);
  const Value& cv = v;
  CHECK_THROWS_AS(cv.get<long>(), weft::TypeError);

  Value empty;
  try {
    (void)empty.get<int>();
    FAIL("no exception");
  } catch (const weft::TypeError& e) {
    CHECK(e.id() == "type.wrong-type");
    CHECK_THAT(e.text(), Contains("<empty>"));
    CHECK_THAT(e.text(), Contains("'int'"));
  }
}

TEST_CASE("nbytes estimates the memory a value holds", "[value]") {
  CHECK(Value::of(1.0).nbytes() == 8);
  CHECK(Value::of(std::int32_t{1}).nbytes() == 4);

  std::vector<double> v(1000);
  const std::size_t vector_bytes = Value::of(v).nbytes();
  CHECK(vector_bytes >= 8000);
  CHECK(vector_bytes <= 8000 + 64);

  CHECK(Value::of(std::string(1000, 'x')).nbytes() >= 1000);
  CHECK(Value::of(std::string(1000, 'x')).nbytes() <= 1000 + 64);
  CHECK(Value::of(Kilobyte{}).nbytes() == 1024);
  CHECK(Value::of(Sized{}).nbytes() == 12345);
  CHECK(Value::of(CustomSize{5}).nbytes() == 1005);

  // Containers of containers add up what each element owns.
  std::vector<std::string> words(10, std::string(100, 'w'));
  CHECK(Value::of(words).nbytes() >= 1000);
  std::vector<std::vector<double>> rows(10, std::vector<double>(100));
  CHECK(Value::of(rows).nbytes() >= 8000);
}

TEMPLATE_TEST_CASE("every object a Value makes is destroyed exactly once", "[value]", SmallTracked,
                   BigTracked) {
  using T = TestType;
  T::counts = {};
  const bool stored_inline = Value::fits_inline<T>;
  {
    Value a = Value::make<T>(7);
    CHECK(T::counts.live() == 1);
    CHECK(a.type()->stored_inline == stored_inline);

    const int constructed_before_move = T::counts.constructed;
    Value b = std::move(a);
    CHECK(T::counts.live() == 1);
    // Inline values are moved object by object; heap values by pointer.
    CHECK(T::counts.constructed - constructed_before_move == (stored_inline ? 1 : 0));
    CHECK(b.get<T>().value == 7);

    Value c = b.clone();
    CHECK(T::counts.live() == 2);
    CHECK(c.get<T>().value == 7);

    c.reset();
    CHECK_FALSE(c.has_value());
    CHECK(T::counts.live() == 1);
    c.reset();
    CHECK(T::counts.live() == 1);

    c = Value::make<T>(8);
    b = std::move(c);  // destroys the 7
    CHECK(T::counts.live() == 1);
    CHECK(b.get<T>().value == 8);

    {
      T taken = b.take<T>();
      CHECK(taken.value == 8);
      CHECK_FALSE(b.has_value());
      CHECK(T::counts.live() == 1);
    }
    CHECK(T::counts.live() == 0);

    Value d = Value::of(T(9));
    CHECK(T::counts.live() == 1);
    Value e = d.clone();
    Value f = Value::make<T>(10);
    CHECK(T::counts.live() == 3);
  }
  CHECK(T::counts.live() == 0);
  CHECK(T::counts.destroyed == T::counts.constructed);
}
