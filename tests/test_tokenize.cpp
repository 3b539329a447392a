// weft::tokenize: determinism, sensitivity to values and types, large
// (streamed) inputs, user types, the random fallback and
// tokenize.ensure-deterministic; keys of delayed calls built from tokens.
#include "weft/tokenize.hpp"

#include <catch2/catch.hpp>
#include <xxhash.h>

#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "weft/config.hpp"
#include "weft/delayed.hpp"
#include "weft/error.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace weft_test_tokenize {

// A type that opts in through a Tokenizer<T> specialisation: only `id`
// counts, `cache` is not part of the value.
struct Tagged {
  int id;
  std::string cache;
};

// A type that opts in through a member tokenize(Hasher&).
struct Named {
  std::string name;
  void tokenize(weft::Hasher& h) const { weft::tokenize_into(h, name); }
};

// Both: the Tokenizer specialisation wins.
struct Both {
  int a;
  int b;
  void tokenize(weft::Hasher& h) const { weft::tokenize_into(h, a); }
};

// Weft cannot hash these: no tokenizer, and not plain bytes.
struct Opaque {
  std::string text;
};
struct Padded {  // trivially copyable, but padding bytes are not part of the value
  char c;
  double d;
};

// Plain bytes with a unique representation are hashed as they are.
struct Pair32 {
  std::int32_t a;
  std::int32_t b;
};

// Functions with external linkage, so that keys carry their names.
int inc(int x) { return x + 1; }
int dec(int x) { return x - 1; }
template <class T>
T twice(T x) {
  return 2 * x;
}
int use_opaque(const Opaque& o) { return static_cast<int>(o.text.size()); }

}  // namespace weft_test_tokenize

template <>
struct weft::Tokenizer<weft_test_tokenize::Tagged> {
  static void apply(weft::Hasher& h, const weft_test_tokenize::Tagged& t) { weft::tokenize_into(h, t.id); }
};
template <>
struct weft::Tokenizer<weft_test_tokenize::Both> {
  static void apply(weft::Hasher& h, const weft_test_tokenize::Both& v) { weft::tokenize_into(h, v.b); }
};

// Defined in test_graph.cpp: returns that file's local_twin.
int (*weft_test_graph_local_twin())(int);

namespace {

using namespace weft_test_tokenize;

// Internal linkage: no exported symbol names them.
int static_add_one(int x) { return x + 1; }
int static_times_three(int x) { return x * 3; }
// test_graph.cpp has a function of the same name and signature in its own
// anonymous namespace, so the two have the same (local) symbol.
int local_twin(int x) { return x + 1; }

weft::Token xxh3_128(const void* data, std::size_t n) {
  XXH128_hash_t r = XXH3_128bits(data, n);
  return weft::Token{r.low64, r.high64};
}

}  // namespace

TEST_CASE("tokenize is deterministic", "[tokenize]") {
  CHECK(weft::tokenize(1) == weft::tokenize(1));
  CHECK(weft::tokenize(1, 2.5, std::string("x")) == weft::tokenize(1, 2.5, std::string("x")));
  std::vector<std::string> words{"alpha", "beta", "gamma"};
  CHECK(weft::tokenize(words) == weft::tokenize(std::vector<std::string>{"alpha", "beta", "gamma"}));
  CHECK_FALSE(weft::tokenize(1).is_zero());
  // No arguments hash the empty input: fixed too.
  CHECK(weft::tokenize() == weft::tokenize());
  CHECK(weft::tokenize() == xxh3_128("", 0));
}

TEST_CASE("tokenize tells values and types apart", "[tokenize]") {
  CHECK(weft::tokenize(1) != weft::tokenize(2));
  CHECK(weft::tokenize(1) != weft::tokenize(1.0));
  CHECK(weft::tokenize(1.0f) != weft::tokenize(1.0));
  CHECK(weft::tokenize(int{1}) != weft::tokenize(long{1}));
  CHECK(weft::tokenize(std::int8_t{1}) != weft::tokenize(std::int16_t{1}));
  CHECK(weft::tokenize(0.0) != weft::tokenize(-0.0));
  CHECK(weft::tokenize('a') != weft::tokenize(std::string("a")));

  // How arguments split matters.
  CHECK(weft::tokenize(std::string("ab")) != weft::tokenize(std::string("a"), std::string("b")));
  CHECK(weft::tokenize(std::string("a"), std::string("bc")) !=
        weft::tokenize(std::string("ab"), std::string("c")));
  CHECK(weft::tokenize(1, 2) != weft::tokenize(2, 1));
  CHECK(weft::tokenize(1, 2) != weft::tokenize(std::tuple{1, 2}));

  // Order and length of containers matter.
  CHECK(weft::tokenize(std::vector<int>{1, 2}) != weft::tokenize(std::vector<int>{2, 1}));
  CHECK(weft::tokenize(std::vector<int>{1, 2}) != weft::tokenize(std::vector<int>{1, 2, 0}));
  CHECK(weft::tokenize(std::vector<int>{}) != weft::tokenize(std::vector<int>{0}));
  CHECK(weft::tokenize(std::vector<std::string>{"ab", "c"}) !=
        weft::tokenize(std::vector<std::string>{"a", "bc"}));
  CHECK(weft::tokenize(std::vector<std::string>{"a"}) !=
        weft::tokenize(std::vector<std::string>{"a", ""}));
}

TEST_CASE("tokenize handles strings, containers, tuples and optionals", "[tokenize]") {
  SECTION("every spelling of a string is the same string") {
    weft::Token t = weft::tokenize(std::string("hello"));
    CHECK(weft::tokenize("hello") == t);
    CHECK(weft::tokenize(std::string_view("hello")) == t);
    const char* p = "hello";
    CHECK(weft::tokenize(p) == t);
    CHECK(weft::tokenize(std::string()) == weft::tokenize(""));
    CHECK(weft::tokenize(std::string("hello")) != weft::tokenize(std::string("hellO")));
    // A string is not the bytes of a char vector.
    CHECK(weft::tokenize(std::string("ab")) != weft::tokenize(std::vector<char>{'a', 'b'}));
  }
  SECTION("containers of numbers hash their contents") {
    CHECK(weft::tokenize(std::vector<double>{1.5, 2.5}) == weft::tokenize(std::vector<double>{1.5, 2.5}));
    CHECK(weft::tokenize(std::vector<double>{1.5, 2.5}) != weft::tokenize(std::vector<double>{1.5, 2.25}));
    CHECK(weft::tokenize(std::list<int>{1, 2, 3}) == weft::tokenize(std::list<int>{1, 2, 3}));
    CHECK(weft::tokenize(std::list<int>{1, 2, 3}) != weft::tokenize(std::list<int>{1, 3, 2}));
    std::map<std::string, int> m{{"a", 1}, {"b", 2}};
    CHECK(weft::tokenize(m) == weft::tokenize(std::map<std::string, int>{{"b", 2}, {"a", 1}}));
    CHECK(weft::tokenize(m) != weft::tokenize(std::map<std::string, int>{{"a", 1}, {"b", 3}}));
  }
  SECTION("nested vectors keep their structure") {
    using VV = std::vector<std::vector<int>>;
    CHECK(weft::tokenize(VV{{1, 2}, {3}}) == weft::tokenize(VV{{1, 2}, {3}}));
    CHECK(weft::tokenize(VV{{1, 2}, {3}}) != weft::tokenize(VV{{1}, {2, 3}}));
    CHECK(weft::tokenize(VV{{1, 2, 3}}) != weft::tokenize(VV{{1, 2}, {3}}));
    CHECK(weft::tokenize(VV{{}}) != weft::tokenize(VV{}));
    CHECK(weft::tokenize(VV{{}, {}}) != weft::tokenize(VV{{}}));
  }
  SECTION("tuples and pairs") {
    CHECK(weft::tokenize(std::tuple{1, std::string("a"), 2.0}) ==
          weft::tokenize(std::tuple{1, std::string("a"), 2.0}));
    CHECK(weft::tokenize(std::tuple{1, std::string("a")}) != weft::tokenize(std::tuple{1, std::string("b")}));
    CHECK(weft::tokenize(std::pair{1, 2}) == weft::tokenize(std::pair{1, 2}));
    CHECK(weft::tokenize(std::pair{1, 2}) != weft::tokenize(std::pair{2, 1}));
    CHECK(weft::tokenize(std::tuple{1, 2}) != weft::tokenize(std::tuple{1, 2L}));
  }
  SECTION("optionals") {
    CHECK(weft::tokenize(std::optional<int>{}) == weft::tokenize(std::optional<int>{}));
    CHECK(weft::tokenize(std::optional<int>{}) != weft::tokenize(std::optional<int>{0}));
    CHECK(weft::tokenize(std::optional<int>{0}) != weft::tokenize(std::optional<int>{1}));
    CHECK(weft::tokenize(std::optional<int>{1}) != weft::tokenize(1));
    CHECK(weft::tokenize(std::optional<std::string>{"x"}) == weft::tokenize(std::optional<std::string>{"x"}));
  }
  SECTION("keys and tokens") {
    weft::Key k("x", weft::Token{1, 2}, {0, 1});
    CHECK(weft::tokenize(k) == weft::tokenize(weft::Key(k.str())));
    CHECK(weft::tokenize(k) != weft::tokenize(k.with_index({1, 0})));
    CHECK(weft::tokenize(weft::Key("x")) != weft::tokenize(std::string("x")));
    CHECK(weft::tokenize(weft::Token{1, 2}) == weft::tokenize(weft::Token{1, 2}));
    CHECK(weft::tokenize(weft::Token{1, 2}) != weft::tokenize(weft::Token{2, 1}));
  }
  SECTION("plain structs with unique byte representations hash their bytes") {
    CHECK(weft::tokenize(Pair32{1, 2}) == weft::tokenize(Pair32{1, 2}));
    CHECK(weft::tokenize(Pair32{1, 2}) != weft::tokenize(Pair32{2, 1}));
    weft::Hasher h;
    weft::tokenize_into(h, Pair32{1, 2});
    CHECK(h.deterministic());
  }
}

TEST_CASE("large inputs stream past the inline buffer", "[tokenize]") {
  std::vector<double> big(10000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = 0.5 * static_cast<double>(i);
  const weft::Token t = weft::tokenize(big);
  CHECK(weft::tokenize(big) == t);
  std::vector<double> copy = big;
  CHECK(weft::tokenize(copy) == t);
  SECTION("one element changed") {
    auto where = GENERATE(std::size_t{0}, std::size_t{24}, std::size_t{5000}, std::size_t{9999});
    copy[where] += 1;
    CHECK(weft::tokenize(copy) != t);
  }
  SECTION("one element fewer") {
    copy.pop_back();
    CHECK(weft::tokenize(copy) != t);
  }
  SECTION("many small pieces (a vector of strings)") {
    std::vector<std::string> words;
    for (int i = 0; i < 10000; ++i) words.push_back("word" + std::to_string(i));
    const weft::Token w = weft::tokenize(words);
    CHECK(weft::tokenize(words) == w);
    words[7777] = "changed";
    CHECK(weft::tokenize(words) != w);
  }
  SECTION("large values mixed with small ones") {
    CHECK(weft::tokenize(1, big, std::string("tail")) == weft::tokenize(1, copy, std::string("tail")));
    CHECK(weft::tokenize(1, big, std::string("tail")) != weft::tokenize(2, big, std::string("tail")));
    CHECK(weft::tokenize(1, big, std::string("tail")) != weft::tokenize(1, big, std::string("tall")));
  }
}

TEST_CASE("a Hasher's digest depends only on the bytes, not on how they arrive", "[tokenize]") {
  // Lengths around the 200-byte inline buffer, and well past it.
  auto n = GENERATE(0, 1, 199, 200, 201, 399, 400, 401, 1000, 5000);
  auto piece = GENERATE(1, 7, 200, 201, 4096);
  std::vector<unsigned char> data(static_cast<std::size_t>(n));
  data.reserve(data.size() + 1);  // data() is not null even when n is 0
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 31 + 7);
  INFO("length " << n << ", pieces of " << piece);

  weft::Hasher whole;
  whole.bytes(data.data(), data.size());
  weft::Hasher pieces;
  for (std::size_t at = 0; at < data.size(); at += piece)
    pieces.bytes(data.data() + at, std::min<std::size_t>(piece, data.size() - at));

  const weft::Token expected = xxh3_128(data.data(), data.size());
  CHECK(whole.digest() == expected);
  CHECK(pieces.digest() == expected);
  // digest() does not consume the state: asking twice, or after more input, works.
  CHECK(pieces.digest() == expected);
  pieces.bytes("x", 1);
  data.push_back('x');
  CHECK(pieces.digest() == xxh3_128(data.data(), data.size()));
}

TEST_CASE("user types opt in through Tokenizer<T> or a member tokenize", "[tokenize]") {
  SECTION("Tokenizer<T> specialisation") {
    CHECK(weft::tokenize(Tagged{1, "cache a"}) == weft::tokenize(Tagged{1, "cache b"}));
    CHECK(weft::tokenize(Tagged{1, ""}) != weft::tokenize(Tagged{2, ""}));
    weft::Hasher h;
    weft::tokenize_into(h, Tagged{1, ""});
    CHECK(h.deterministic());
  }
  SECTION("member tokenize(Hasher&)") {
    CHECK(weft::tokenize(Named{"a"}) == weft::tokenize(Named{"a"}));
    CHECK(weft::tokenize(Named{"a"}) != weft::tokenize(Named{"b"}));
    CHECK(weft::tokenize(Named{"a"}) == weft::tokenize(std::string("a")));
  }
  SECTION("the specialisation wins over the member") {
    CHECK(weft::tokenize(Both{1, 5}) == weft::tokenize(Both{2, 5}));
    CHECK(weft::tokenize(Both{1, 5}) != weft::tokenize(Both{1, 6}));
  }
  SECTION("inside containers") {
    CHECK(weft::tokenize(std::vector<Named>{{"a"}, {"b"}}) == weft::tokenize(std::vector<Named>{{"a"}, {"b"}}));
    CHECK(weft::tokenize(std::vector<Named>{{"a"}, {"b"}}) != weft::tokenize(std::vector<Named>{{"b"}, {"a"}}));
    CHECK(weft::tokenize(std::optional<Tagged>{Tagged{3, ""}}) == weft::tokenize(std::optional<Tagged>{Tagged{3, "x"}}));
  }
}

TEST_CASE("a value weft cannot hash gets a fresh random token", "[tokenize]") {
  CHECK(weft::tokenize(Opaque{"a"}) != weft::tokenize(Opaque{"a"}));
  CHECK(weft::tokenize(Padded{'a', 1.0}) != weft::tokenize(Padded{'a', 1.0}));
  CHECK(weft::tokenize(1, Opaque{"a"}) != weft::tokenize(1, Opaque{"a"}));
  CHECK(weft::tokenize(std::vector<Opaque>{{"a"}}) != weft::tokenize(std::vector<Opaque>{{"a"}}));

  weft::Hasher h;
  CHECK(h.deterministic());
  CHECK(h.nondeterministic_type() == nullptr);
  weft::tokenize_into(h, 1);
  weft::tokenize_into(h, Opaque{"a"});
  weft::tokenize_into(h, Padded{'a', 1.0});
  CHECK_FALSE(h.deterministic());
  REQUIRE(h.nondeterministic_type() != nullptr);
  CHECK(*h.nondeterministic_type() == typeid(Opaque));  // the first one is remembered
  CHECK(h.digest() != h.digest());
}

TEST_CASE("tokenize.ensure-deterministic turns the random fallback into a TypeError", "[tokenize]") {
  {
    weft::config::set scope{{"tokenize.ensure-deterministic", true}};
    CHECK_THROWS_AS(weft::tokenize(Opaque{"a"}), weft::TypeError);
    try {
      weft::tokenize(std::vector<Opaque>{{"a"}});
      FAIL("no exception");
    } catch (const weft::TypeError& e) {
      CHECK(e.id() == "type.not-tokenizable");
      CHECK_THAT(e.what(), Contains("weft_test_tokenize::Opaque"));
      CHECK_THAT(e.what(), Contains("tokenize.ensure-deterministic"));
    }
    // Hashable values are unaffected.
    CHECK(weft::tokenize(Named{"a"}) == weft::tokenize(Named{"a"}));
    // A delayed call with such an argument cannot get a key either.
    CHECK_THROWS_AS(weft::delayed(use_opaque)(Opaque{"a"}), weft::TypeError);
  }
  CHECK_NOTHROW(weft::tokenize(Opaque{"a"}));
}

TEST_CASE("delayed calls get stable keys named after the function", "[tokenize][delayed]") {
  const weft::Key k = weft::delayed(inc)(1).key();
  CHECK(weft::delayed(inc)(1).key() == k);
  CHECK(weft::delayed(&inc)(1).key() == k);
  CHECK(k.name() == "inc");
  CHECK(k.has_token());
  CHECK_THAT(k.str(), StartsWith("inc-"));
  CHECK(k.str().size() == 4 + 32);
  CHECK(weft::Key(k.str()) == k);

  CHECK(weft::delayed(inc)(2).key() != k);
  CHECK(weft::delayed(dec)(1).key() != k);
  CHECK(weft::delayed(dec)(1).key().name() == "dec");
  CHECK(weft::delayed(twice<int>)(1).key().name() == "twice");
  CHECK(weft::delayed(twice<int>)(1).key() != weft::delayed(twice<long>)(1L).key());

  // Keys of calls on delayed values follow the keys of their arguments.
  CHECK(weft::delayed(inc)(weft::delayed(inc)(1)).key() == weft::delayed(inc)(weft::delayed(inc)(1)).key());
  CHECK(weft::delayed(inc)(weft::delayed(inc)(1)).key() != weft::delayed(inc)(weft::delayed(inc)(2)).key());
  CHECK(weft::delayed(inc)(weft::delayed(inc)(1)).key() != weft::delayed(inc)(2).key());

  SECTION("options") {
    CHECK(weft::delayed(inc, {.name = "step"})(1).key().name() == "step");
    CHECK(weft::delayed(inc, {.name = "step"})(1).key() == weft::delayed(inc, {.name = "step"})(1).key());
    CHECK(weft::delayed(inc, {.pure = false})(1).key() != weft::delayed(inc, {.pure = false})(1).key());
    CHECK(weft::delayed(inc, {.pure = false})(1).key().name() == "inc");
  }
  SECTION("functions without an exported symbol are named from the full symbol table") {
    const weft::Key s = weft::delayed(static_add_one)(1).key();
    CHECK(s.name() == "static_add_one");
    CHECK(weft::delayed(static_add_one)(1).key() == s);
    CHECK(weft::delayed(static_add_one)(2).key() != s);
    CHECK(weft::delayed(static_times_three)(1).key() != s);
  }
}

TEST_CASE("delayed lambdas are keyed by their type and captures", "[tokenize][delayed]") {
  auto add_one = [](int x) { return x + 1; };
  auto add_two = [](int x) { return x + 2; };
  CHECK(weft::delayed(add_one)(1).key() == weft::delayed(add_one)(1).key());
  CHECK(weft::delayed(add_one)(1).key() != weft::delayed(add_two)(1).key());
  CHECK(weft::delayed(add_one)(1).key().name() == "lambda");

  auto adder = [](int n) { return [n](int x) { return x + n; }; };
  CHECK(weft::delayed(adder(1))(1).key() == weft::delayed(adder(1))(1).key());
  CHECK(weft::delayed(adder(1))(1).key() != weft::delayed(adder(2))(1).key());
}

TEST_CASE("delayed literals are keyed by type name and value", "[tokenize][delayed]") {
  CHECK(weft::delayed(5).key() == weft::delayed(5).key());
  CHECK(weft::delayed(5).key() != weft::delayed(6).key());
  CHECK(weft::delayed(5).key().name() == "int");
  CHECK(weft::delayed(5).key().token() == weft::tokenize(5));
  CHECK(weft::delayed(std::string("s")).key().name() == "string");
  CHECK(weft::delayed(std::vector<double>{1.0}).key().name() == "vector");
  CHECK(weft::delayed(5, {.name = "five"}).key().name() == "five");
  // A Delayed hashes as its key.
  auto d = weft::delayed(inc)(1);
  CHECK(weft::tokenize(d) == weft::tokenize(d.key()));
}

TEST_CASE("numbers of different kinds with the same bytes get different tokens",
          "[tokenize]") {
  CHECK(weft::tokenize(1.0f) != weft::tokenize(std::int32_t{0x3f800000}));  // bits of 1.0f
  CHECK(weft::tokenize(-1) != weft::tokenize(0xffffffffu));
  CHECK(weft::tokenize(std::vector<float>{}) != weft::tokenize(std::vector<int>{}));
  CHECK(weft::tokenize(std::vector<float>{1.0f}) != weft::tokenize(std::vector<std::int32_t>{0x3f800000}));
  // What it breaks: d + 1 is a Delayed<int>, d + 1u a Delayed<unsigned>, under one key.
  auto d = weft::delayed(5);
  CHECK((d + 1).key() != (d + 1u).key());
}

TEST_CASE("nested tuples keep their structure", "[tokenize]") {
  using Inner2 = std::tuple<std::tuple<int, int>>;
  using Inner1 = std::tuple<std::tuple<int>, int>;
  CHECK(weft::tokenize(Inner2{{1, 2}}) != weft::tokenize(Inner1{{1}, 2}));
}

TEST_CASE("local functions of the same name in two files get different keys",
          "[tokenize][delayed]") {
  int (*other)(int) = weft_test_graph_local_twin();
  REQUIRE(other != &local_twin);
  REQUIRE(other(1) != local_twin(1));
  auto mine = weft::delayed(local_twin)(1);
  auto theirs = weft::delayed(other)(1);
  CHECK(mine.key() != theirs.key());
  auto [a, b] = weft::compute(weft::scheduler::sync, mine, theirs);
  CHECK(a == local_twin(1));
  CHECK(b == other(1));
}
