// Tasks as bytes (weft/detail/task_wire.hpp): every kind of function and
// argument round trips and the rebuilt task computes what the original does;
// keys, cheap flags and dependency counts survive; functions travel as
// (object, offset); tasks that cannot travel are refused naming the type;
// unknown, colliding, truncated and garbled encodings are errors.
#include <catch2/catch.hpp>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "weft/config.hpp"
#include "weft/weft.hpp"

using Catch::Matchers::Contains;
using weft::Delayed;
using weft::delayed;
using weft::TaskPtr;
using weft::Value;

namespace weft_test_task_wire {

int add(int a, int b) { return a + b; }
int inc(int x) { return x + 1; }
int apply(int (*f)(int), int x) { return f(x); }
std::string describe(const std::vector<double>& xs, const std::string& label, int n) {
  return label + ":" + std::to_string(std::accumulate(xs.begin(), xs.end(), 0.0) * n);
}
int nested_sum(const std::vector<std::vector<int>>& groups) {
  int total = 0;
  for (const auto& g : groups)
    for (int v : g) total = total * 10 + v;
  return total;
}
std::string mixed(std::tuple<int, double, std::string> t, std::pair<int, int> p,
                  std::array<int, 3> a) {
  return std::to_string(std::get<0>(t)) + "/" + std::to_string(std::get<1>(t)) + "/" +
         std::get<2>(t) + "/" + std::to_string(p.first - p.second) + "/" +
         std::to_string(a[0] * 100 + a[1] * 10 + a[2]);
}

// Trivially copyable and not empty: travels as its bytes.
struct Scale {
  double factor;
  double operator()(double x) const { return x * factor; }
};
// Empty: travels as nothing.
struct Triple {
  int operator()(int x) const { return 3 * x; }
};
// An argument no encoding fits.
struct Opaque {
  std::function<int()> make;
};
int call_opaque(const Opaque& o, int x) { return o.make() + x; }
int length_of(const char* text) { return static_cast<int>(std::strlen(text)); }

// CallTask<Triple, int> is only named here, in a function nobody calls.
[[maybe_unused]] TaskPtr never_called() { return weft::task("t", Triple{}, 5); }

// Runs `task` with `inputs` as its dependencies' results.
Value run(const weft::Task& task, const std::vector<Value>& inputs) {
  std::vector<const Value*> pointers;
  for (const Value& v : inputs) pointers.push_back(&v);
  return task.run(pointers);
}

std::vector<std::byte> encode(const TaskPtr& task) {
  std::vector<std::byte> bytes;
  weft::detail::encode_task(*task, bytes);
  return bytes;
}

// Encodes and decodes `task`, checking what must survive.
TaskPtr round_trip(const TaskPtr& task) {
  const std::vector<std::byte> bytes = encode(task);
  std::span<const std::byte> in = bytes;
  TaskPtr back = weft::detail::decode_task(in);
  REQUIRE(back);
  CHECK(in.empty());
  const weft::Task& original = *task;
  const weft::Task& decoded = *back;
  CHECK(typeid(decoded) == typeid(original));
  CHECK(back->key() == task->key());
  CHECK(back->cheap() == task->cheap());
  CHECK(back->dependencies().size() == task->dependencies().size());
  return back;
}

// The original and its round trip give the same result on `inputs`.
template <class T>
T same_result(const TaskPtr& task, const std::vector<Value>& inputs) {
  TaskPtr back = round_trip(task);
  T expected = run(*task, inputs).get<T>();
  T got = run(*back, inputs).get<T>();
  CHECK(got == expected);
  return got;
}

std::vector<Value> values() { return {}; }
template <class... V>
std::vector<Value> values(V... v) {
  std::vector<Value> out;
  (out.push_back(Value::of(std::move(v))), ...);
  return out;
}

bool contains_bytes(std::span<const std::byte> haystack, const void* needle, std::size_t n) {
  const auto* first = static_cast<const std::byte*>(needle);
  return std::search(haystack.begin(), haystack.end(), first, first + n) != haystack.end();
}

void check_bad_encoding(std::span<const std::byte> bytes, const std::string& problem) {
  std::span<const std::byte> in = bytes;
  try {
    weft::detail::decode_task(in);
    FAIL("decode_task accepted " << bytes.size() << " malformed bytes");
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.bad-encoding");
    CHECK_THAT(e.text(), Contains(problem));
  }
  CHECK(in.data() == bytes.data());
  CHECK(in.size() == bytes.size());
}

void check_not_serializable(const TaskPtr& task, const std::string& type, const std::string& why) {
  std::vector<std::byte> out(3, std::byte{9});
  try {
    weft::detail::encode_task(*task, out);
    FAIL("encode_task accepted a task that cannot travel");
  } catch (const weft::TypeError& e) {
    CHECK(e.id() == "type.not-serializable");
    CHECK_THAT(e.text(), Contains(task->key().str()));
    CHECK_THAT(e.text(), Contains(type));
    CHECK_THAT(e.text(), Contains(why));
  }
  CHECK(out == std::vector<std::byte>(3, std::byte{9}));
}

// The offset of the dependency count in an encoding whose key has a token and no index.
std::size_t dependency_count_offset(const weft::Key& key) {
  return sizeof(std::uint64_t) + 1 + sizeof(std::uint32_t) + key.name().size() + 16;
}

}  // namespace weft_test_task_wire

using namespace weft_test_task_wire;

TEST_CASE("task wire: delayed free functions and task() with refs round trip", "[task-wire]") {
  Delayed<int> x = delayed(20), y = delayed(22);
  CHECK(same_result<int>(delayed(add)(x, y).task(), values(20, 22)) == 42);
  CHECK(same_result<int>(delayed(add)(x, 5).task(), values(9)) == 14);

  TaskPtr by_ref = weft::task("y", add, weft::ref<int>("a"), weft::ref<int>("b"));
  CHECK(same_result<int>(by_ref, values(1, 2)) == 3);
  TaskPtr back = round_trip(by_ref);
  CHECK(back->key().str() == "y");
  CHECK_FALSE(back->key().has_token());
  for (const weft::TaskRef& dep : back->dependencies()) {
    CHECK(dep.key == weft::Key());
    CHECK(dep.task == nullptr);
  }

  // Chunk keys, with and without a token.
  CHECK(same_result<int>(weft::task(weft::Key("('x', 1, -2)"), inc, weft::ref<int>("a")),
                         values(6)) == 7);
  const weft::Key chunk("arr", weft::tokenize(3), {4, 5, 6});
  TaskPtr chunked = weft::task(chunk, inc, 1);
  CHECK(round_trip(chunked)->key().str() == chunk.str());

  // A function pointer as an argument travels as a function too.
  CHECK(same_result<int>(delayed(apply)(inc, x).task(), values(41)) == 42);
}

TEST_CASE("task wire: lambdas and function objects round trip", "[task-wire]") {
  Delayed<int> x = delayed(6);
  CHECK(same_result<int>(delayed([](int a, int b) { return a * b; })(x, 7).task(), values(6)) ==
        42);

  const int k = 3;
  const double s = 0.5;
  auto capturing = [k, s](int a) { return a * k + s; };
  STATIC_REQUIRE(std::is_trivially_copyable_v<decltype(capturing)>);
  CHECK(same_result<double>(delayed(capturing)(x).task(), values(6)) == 18.5);

  CHECK(same_result<double>(delayed(Scale{2.5})(delayed(4.0)).task(), values(4.0)) == 10.0);
  CHECK(same_result<int>(delayed(Triple{})(x).task(), values(5)) == 15);
  CHECK(same_result<int>((x + delayed(1)).task(), values(41, 1)) == 42);
  CHECK(same_result<int>((-x).task(), values(5)) == -5);
}

TEST_CASE("task wire: containers, strings, tuples and nested dependencies round trip",
          "[task-wire]") {
  Delayed<int> n = delayed(2);
  CHECK(same_result<std::string>(
            delayed(describe)(std::vector<double>{1.5, 2.5}, std::string("sum"), n).task(),
            values(2)) == "sum:8.000000");

  // Dynamic dependencies: nested vectors of Delayed, in dependencies() order.
  std::vector<std::vector<Delayed<int>>> groups{{delayed(1), delayed(2)}, {}, {delayed(3)}};
  TaskPtr nested = delayed(nested_sum)(groups).task();
  REQUIRE(nested->dependencies().size() == 3);
  CHECK(same_result<int>(nested, values(4, 5, 6)) == 456);

  std::tuple<Delayed<int>, double, std::string> t{delayed(7), 0.25, "t"};
  std::pair<int, Delayed<int>> p{10, delayed(3)};
  std::array<Delayed<int>, 3> a{delayed(1), delayed(2), delayed(3)};
  TaskPtr tupled = delayed(mixed)(t, p, a).task();
  REQUIRE(tupled->dependencies().size() == 5);
  CHECK(same_result<std::string>(tupled, values(7, 3, 1, 2, 3)) == "7/0.250000/t/7/123");
  // Without dependencies, tuples and arrays of plain values travel too.
  CHECK(same_result<std::string>(
            weft::task("m", mixed, std::tuple<int, double, std::string>{1, 2.0, "x"},
                       std::pair<int, int>{5, 2}, std::array<int, 3>{4, 5, 6}),
            values()) == "1/2.000000/x/3/456");
}

TEST_CASE("task wire: cheap flags survive", "[task-wire]") {
  TaskPtr cheap = delayed(inc, {.cheap = true})(delayed(1)).task();
  REQUIRE(cheap->cheap());
  CHECK(round_trip(cheap)->cheap());
}

TEST_CASE("task wire: constant tasks carry their value", "[task-wire]") {
  const std::vector<double> v{1.0, -2.0, 3.5};
  CHECK(same_result<std::vector<double>>(delayed(v).task(), values()) == v);
  const std::map<std::string, int> m{{"a", 1}, {"b", 2}};
  CHECK(same_result<std::map<std::string, int>>(weft::literal("m", m), values()) == m);
  CHECK(same_result<std::string>(weft::literal("s", std::string("text")), values()) == "text");
}

TEST_CASE("task wire: tasks decode one after another from one buffer", "[task-wire]") {
  TaskPtr first = delayed(add)(delayed(1), 2).task();
  TaskPtr second = weft::literal("c", 5);
  std::vector<std::byte> bytes;
  weft::detail::encode_task(*first, bytes);
  weft::detail::encode_task(*second, bytes);
  std::span<const std::byte> in = bytes;
  CHECK(weft::detail::decode_task(in)->key() == first->key());
  CHECK(weft::detail::decode_task(in)->key() == second->key());
  CHECK(in.empty());
}

TEST_CASE("task wire: task types are registered before main", "[task-wire]") {
  // No code made a CallTask<Triple, int>: bytes built by hand still decode,
  // as on a rank that never made such a task.
  using T = weft::CallTask<Triple, int>;
  std::vector<std::byte> bytes;
  auto put = [&](const auto& v) { weft::detail::append_bytes(bytes, &v, sizeof v); };
  put(XXH3_64bits(typeid(T).name(), std::strlen(typeid(T).name())));
  put(std::uint8_t{0});     // flags: not cheap, no token, no index
  put(std::uint32_t{1});    // name length
  put('t');                 // name
  put(std::uint32_t{0});    // dependencies
  put(14);                  // the int argument; Triple, being empty, takes no bytes
  std::span<const std::byte> in = bytes;
  TaskPtr task = weft::detail::decode_task(in);
  CHECK(task->key().str() == "t");
  CHECK(run(*task, {}).get<int>() == 42);
}

TEST_CASE("task wire: functions travel as object and offset, not as addresses",
          "[task-wire]") {
  // One function in the main program, one exported by libweft.
  const auto* in_program = reinterpret_cast<const void*>(&add);
  const auto* in_library = reinterpret_cast<const void*>(&weft::config::parse_bytes);
  const weft::detail::FunctionLocation program = weft::detail::function_location(in_program);
  const weft::detail::FunctionLocation library = weft::detail::function_location(in_library);
  CHECK(program.object != library.object);
  CHECK(weft::detail::function_at(program) == in_program);
  CHECK(weft::detail::function_at(library) == in_library);
  // The library is loaded at some base above zero, so its offset is not its address.
  CHECK(library.offset != reinterpret_cast<std::uintptr_t>(in_library));

  TaskPtr parse = delayed(weft::config::parse_bytes)(std::string("5kB")).task();
  CHECK(same_result<std::uint64_t>(parse, values()) == 5000);
  const std::vector<std::byte> bytes = encode(parse);
  CHECK_FALSE(contains_bytes(bytes, &in_library, sizeof in_library));
  CHECK(contains_bytes(bytes, &library, sizeof library));

  SECTION("an object id no loaded object has") {
    try {
      weft::detail::function_at({0x5eed5eed5eed5eedULL, 0});
      FAIL("function_at accepted an unknown object");
    } catch (const weft::TypeError& e) {
      CHECK(e.id() == "type.unknown-function");
      CHECK_THAT(e.text(), Contains("0x5eed5eed5eed5eed"));
    }
  }
  SECTION("an offset outside the object's code") {
    try {
      weft::detail::function_at({library.object, ~std::uint64_t{0} / 2});
      FAIL("function_at accepted an offset outside the code");
    } catch (const weft::ValueError& e) {
      CHECK(e.id() == "value.bad-encoding");
      CHECK_THAT(e.text(), Contains("outside its code"));
    }
  }
}

TEST_CASE("task wire: what cannot travel is refused, naming its type", "[task-wire]") {
  Delayed<int> x = delayed(1);
  const std::string text = "captured";
  auto holds_string = [text](int a) { return a + static_cast<int>(text.size()); };
  TaskPtr lambda = delayed(holds_string)(x).task();
  // Local schedulers still run it.
  CHECK(run(*lambda, values(1)).get<int>() == 9);
  check_not_serializable(lambda, "lambda",
                                                 "captures state that cannot be copied bytewise");

  TaskPtr opaque = delayed(call_opaque)(Opaque{[] { return 1; }}, x).task();
  check_not_serializable(opaque, "weft_test_task_wire::Opaque", "cereal");
  // Refused by type, even when the vector holding it is empty.
  TaskPtr empty = weft::task("e", [](const std::vector<Opaque>& v) { return v.size(); },
                             std::vector<Opaque>{});
  check_not_serializable(empty, "weft_test_task_wire::Opaque", "cereal");

  TaskPtr pointer = delayed(length_of)("text").task();
  CHECK(run(*pointer, {}).get<int>() == 4);
  check_not_serializable(pointer, "char const*", "points into this process");

  STATIC_REQUIRE(weft::CallTask<int (*)(int, int), Delayed<int>, int>::kSerializable);
  STATIC_REQUIRE_FALSE(weft::CallTask<int (*)(const Opaque&, int), Opaque, int>::kSerializable);
}

TEST_CASE("task wire: an unknown task type id is a TypeError", "[task-wire]") {
  std::vector<std::byte> bytes = encode(delayed(inc)(delayed(1)).task());
  const std::uint64_t unknown = 0x0123456789abcdefULL;
  std::memcpy(bytes.data(), &unknown, sizeof unknown);
  std::span<const std::byte> in = bytes;
  try {
    weft::detail::decode_task(in);
    FAIL("decode_task accepted an unknown type id");
  } catch (const weft::TypeError& e) {
    CHECK(e.id() == "type.unknown-task-type");
    CHECK_THAT(e.text(), Contains("0x0123456789abcdef"));
  }
  CHECK(in.size() == bytes.size());
}

TEST_CASE("task wire: a type id two task types share is a TypeError naming both",
          "[task-wire]") {
  // As two internal-linkage types of the same name in two source files would.
  struct First {};
  struct Second {};
  const std::uint64_t shared = 0x7e57c0111d3d1dULL;
  auto no_decoder = [](weft::detail::TaskHeader&&, weft::detail::EncodingReader&) -> TaskPtr {
    return nullptr;
  };
  weft::detail::register_task_type({&typeid(First), shared, no_decoder});
  weft::detail::register_task_type({&typeid(Second), shared, no_decoder});
  std::vector<std::byte> bytes = encode(weft::literal("c", 1));
  std::memcpy(bytes.data(), &shared, sizeof shared);
  std::span<const std::byte> in = bytes;
  try {
    weft::detail::decode_task(in);
    FAIL("decode_task accepted a colliding type id");
  } catch (const weft::TypeError& e) {
    CHECK(e.id() == "type.id-collision");
    CHECK_THAT(e.text(), Contains("First"));
    CHECK_THAT(e.text(), Contains("Second"));
  }
}

TEST_CASE("task wire: truncated and garbled bytes are ValueErrors", "[task-wire]") {
  SECTION("a call task cut at every length") {
    TaskPtr task = weft::task(weft::Key("m", weft::tokenize(1), {2, 3}), mixed,
                              std::tuple<weft::Ref<int>, double, std::string>{weft::ref<int>("a"), 1.0, "x"},
                              std::pair<int, int>{1, 2}, std::array<int, 3>{4, 5, 6});
    const std::vector<std::byte> bytes = encode(task);
    for (std::size_t n = 0; n < bytes.size(); ++n)
      check_bad_encoding(std::span(bytes).first(n), n < 8 ? "too few to hold a type id" : "early");
  }
  SECTION("a constant task holding a map cut at every length") {
    const std::vector<std::byte> bytes =
        encode(weft::literal("m", std::map<std::string, int>{{"key", 1}}));
    for (std::size_t n = 8; n < bytes.size(); ++n)
      check_bad_encoding(std::span(bytes).first(n), "cannot decode");
  }
  SECTION("a dependency slot out of range") {
    TaskPtr task = delayed(add)(delayed(1), delayed(2)).task();
    std::vector<std::byte> bytes = encode(task);
    const std::uint32_t bad = 2;
    std::memcpy(bytes.data() + bytes.size() - sizeof bad, &bad, sizeof bad);
    check_bad_encoding(bytes, "dependency slot 2 is out of range");
  }
  SECTION("a dependency count that does not match the arguments") {
    TaskPtr task = delayed(add)(delayed(1), delayed(2)).task();
    std::vector<std::byte> bytes = encode(task);
    const std::uint32_t three = 3;
    std::memcpy(bytes.data() + dependency_count_offset(task->key()), &three, sizeof three);
    check_bad_encoding(bytes, "the header says 3 dependencies where the arguments hold 2");
  }
  SECTION("unknown flags") {
    std::vector<std::byte> bytes = encode(delayed(inc)(delayed(1)).task());
    bytes[8] = std::byte{0x80};
    check_bad_encoding(bytes, "unknown flags");
  }
}
