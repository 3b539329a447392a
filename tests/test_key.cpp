// weft::Key: string forms and their round trip, parts, equality and hash,
// deterministic ordering, interning, Token::hex, parse errors.
#include "weft/key.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <compare>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "weft/error.hpp"

namespace {

using Catch::Matchers::Contains;

// A token whose hex form is easy to read: hi = 0x0123...cdef, lo = 0xfedc...3210.
const weft::Token kToken{0xfedcba9876543210ULL, 0x0123456789abcdefULL};
const std::string kTokenHex = "0123456789abcdeffedcba9876543210";

std::vector<std::int64_t> index_of(const weft::Key& k) { return {k.index().begin(), k.index().end()}; }

}  // namespace

TEST_CASE("Token::hex is 32 lowercase hex digits, high word first", "[key]") {
  CHECK(kToken.hex() == kTokenHex);
  CHECK(weft::Token{}.hex() == std::string(32, '0'));
  CHECK(weft::Token{1, 0}.hex() == std::string(31, '0') + "1");
  CHECK(weft::Token{0, 1}.hex() == std::string(15, '0') + "1" + std::string(16, '0'));
  CHECK(weft::Token{~0ULL, ~0ULL}.hex() == std::string(32, 'f'));
  CHECK(weft::Token{}.is_zero());
  CHECK_FALSE(weft::Token{0, 1}.is_zero());
  CHECK_FALSE(weft::Token{1, 0}.is_zero());
}

TEST_CASE("a plain key is its name", "[key]") {
  weft::Key k("x");
  CHECK(k.str() == "x");
  CHECK(k.name() == "x");
  CHECK_FALSE(k.has_token());
  CHECK(k.token().is_zero());
  CHECK(k.index().empty());
  CHECK(k.base_str() == "x");

  // Text that merely looks a little like a token stays a plain name.
  for (const std::string& text : std::vector<std::string>{"my-key", "inc-" + std::string(31, 'a'), "inc-" + std::string(32, 'A'),
                           "inc_" + std::string(32, 'a'),
                           "inc-" + std::string(31, 'a') + "g"}) {
    INFO(text);
    weft::Key plain(text);
    CHECK_FALSE(plain.has_token());
    CHECK(plain.name() == text);
    CHECK(plain.str() == text);
  }
  // An empty name with a token is still a token key: Key("", token) round-trips.
  weft::Key empty_name("-" + std::string(32, 'a'));
  CHECK(empty_name.has_token());
  CHECK(empty_name.name().empty());

  weft::Key empty;
  CHECK(empty.str().empty());
  CHECK(empty.name().empty());
  CHECK(empty == weft::Key(""));
}

TEST_CASE("a name-token key splits into name and token", "[key]") {
  weft::Key k("inc", kToken);
  CHECK(k.str() == "inc-" + kTokenHex);
  CHECK(k.base_str() == k.str());
  CHECK(k.name() == "inc");
  CHECK(k.has_token());
  CHECK(k.token() == kToken);
  CHECK(k.index().empty());

  weft::Key parsed("inc-" + kTokenHex);
  CHECK(parsed == k);
  CHECK(parsed.name() == "inc");
  CHECK(parsed.token() == kToken);

  // The last 32 hex digits are the token; earlier dashes belong to the name.
  weft::Key dashed("read-csv-" + kTokenHex);
  CHECK(dashed.name() == "read-csv");
  CHECK(dashed.token() == kToken);
}

TEST_CASE("chunk keys use Dask's tuple form", "[key]") {
  SECTION("with a token") {
    weft::Key k("x", kToken, {0, 1});
    CHECK(k.str() == "('x-" + kTokenHex + "', 0, 1)");
    CHECK(k.base_str() == "x-" + kTokenHex);
    CHECK(k.name() == "x");
    CHECK(k.token() == kToken);
    CHECK(index_of(k) == std::vector<std::int64_t>{0, 1});
  }
  SECTION("without a token") {
    weft::Key k("x", {3});
    CHECK(k.str() == "('x', 3)");
    CHECK(k.base_str() == "x");
    CHECK_FALSE(k.has_token());
    CHECK(index_of(k) == std::vector<std::int64_t>{3});
  }
  SECTION("parsing accepts spacing variants and negative indices") {
    CHECK(weft::Key("('x',3)") == weft::Key("x", {3}));
    CHECK(weft::Key("('x',  3 ,4)") == weft::Key("x", {3, 4}));
    CHECK(weft::Key("('x', -2)") == weft::Key("x", {-2}));
    CHECK(index_of(weft::Key("('x', 9223372036854775807)")) ==
          std::vector<std::int64_t>{INT64_MAX});
  }
  SECTION("with_index keeps name and token") {
    weft::Key base("x", kToken);
    weft::Key chunk = base.with_index({2, 5, 7});
    CHECK(chunk == weft::Key("x", kToken, {2, 5, 7}));
    CHECK(chunk.base_str() == base.str());
    CHECK(chunk.with_index({}) == base);
  }
}

TEST_CASE("a key's str() round-trips through Key(string)", "[key]") {
  auto k = GENERATE(weft::Key("x"), weft::Key("inc", kToken), weft::Key("x", kToken, {0, 1}),
                    weft::Key("x", {3}), weft::Key("random", weft::Token{1, 2}, {-1, 0, 42}),
                    weft::Key("read-csv", kToken), weft::Key(""), weft::Key("a b", {0}),
                    weft::Key("x", weft::Token{}, {}));
  INFO(k.str());
  weft::Key back(k.str());
  CHECK(back == k);
  CHECK(back.str() == k.str());
  CHECK(back.hash() == k.hash());
  CHECK(back.has_token() == k.has_token());
}

TEST_CASE("malformed tuple keys are ValueError value.bad-key", "[key]") {
  auto text = GENERATE(as<std::string>{}, "('x', a)", "('x)", "('x' 1)", "('x', )", "('x', 1.5)",
                       "('x', 1,)", "('x', 99999999999999999999)");
  INFO(text);
  CHECK_THROWS_AS(weft::Key(text), weft::ValueError);
  try {
    weft::Key k(text);
    FAIL("no exception for " << text << ", got " << k.str());
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.bad-key");
    CHECK_THAT(e.what(), Contains("[weft.value.bad-key]"));
    CHECK_THAT(e.what(), Contains(text));
  }
}

TEST_CASE("a bad chunk index is named in the error", "[key]") {
  try {
    weft::Key k("('x', a)");
    FAIL("no exception, got " << k.str());
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.bad-key");
    CHECK_THAT(e.text(), Contains("'a'"));
    CHECK_THAT(e.text(), Contains("not an integer"));
  }
}

TEST_CASE("key equality and hashing agree", "[key]") {
  weft::Key a("x", kToken, {0, 1});
  weft::Key b("('x-" + kTokenHex + "', 0, 1)");
  CHECK(a == b);
  CHECK(a.hash() == b.hash());
  CHECK(std::hash<weft::Key>{}(a) == a.hash());

  CHECK(a != weft::Key("x", kToken, {1, 0}));
  CHECK(a != weft::Key("x", kToken, {0}));
  CHECK(a != weft::Key("x", kToken, {0, 1, 0}));
  CHECK(a != weft::Key("x", kToken));
  CHECK(a != weft::Key("y", kToken, {0, 1}));
  CHECK(a != weft::Key("x", weft::Token{kToken.lo, kToken.hi + 1}, {0, 1}));
  // A zero token is still a token: "x-000..." is not the plain key "x".
  CHECK(weft::Key("x", weft::Token{}) != weft::Key("x"));

  // Chunk keys of a 100x100 grid hash (almost) without collisions.
  std::unordered_set<std::size_t> hashes;
  for (std::int64_t i = 0; i < 100; ++i)
    for (std::int64_t j = 0; j < 100; ++j) hashes.insert(weft::Key("x", kToken, {i, j}).hash());
  CHECK(hashes.size() >= 9990);
}

TEST_CASE("keys work as unordered_map keys", "[key]") {
  std::unordered_map<weft::Key, int> m;
  m["x"] = 1;
  m[weft::Key("inc", kToken)] = 2;
  m[weft::Key("x", {0, 1})] = 3;
  m[weft::Key("x", {1, 0})] = 4;
  CHECK(m.size() == 4);
  CHECK(m.at(weft::Key("x")) == 1);
  CHECK(m.at(weft::Key("inc-" + kTokenHex)) == 2);
  CHECK(m.at(weft::Key("('x', 0, 1)")) == 3);
  CHECK(m.at(weft::Key("('x', 1, 0)")) == 4);
  CHECK(m.count(weft::Key("('x', 0)")) == 0);
}

TEST_CASE("key ordering is deterministic and follows the string parts", "[key]") {
  // Intern the later name first, so that pointer order disagrees with text order.
  weft::Key late("zz-ordering-test");
  weft::Key early("aa-ordering-test");
  CHECK(early < late);
  CHECK((late <=> early) == std::strong_ordering::greater);

  CHECK(weft::Key("x", {1}) < weft::Key("x", {2}));
  CHECK(weft::Key("x", {1}) < weft::Key("x", {1, 0}));
  CHECK(weft::Key("x", {2}) > weft::Key("x", {1, 5}));
  CHECK(weft::Key("x") < weft::Key("x", weft::Token{}));  // plain before tokened
  CHECK(weft::Key("x", weft::Token{1, 0}) != weft::Key("x", weft::Token{0, 1}));
  CHECK(std::is_neq(weft::Key("x", weft::Token{1, 0}) <=> weft::Key("x", weft::Token{0, 1})));
  CHECK((weft::Key("x", {1}) <=> weft::Key("('x', 1)")) == std::strong_ordering::equal);

  std::vector<weft::Key> keys{weft::Key("b"), weft::Key("a", {2}), weft::Key("a", kToken),
                              weft::Key("a", {1}), weft::Key("a"), weft::Key("c", {0, 0})};
  std::vector<weft::Key> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> strs;
  for (const auto& k : sorted) strs.push_back(k.str());
  CHECK(strs == std::vector<std::string>{"a", "('a', 1)", "('a', 2)", "a-" + kTokenHex, "b",
                                         "('c', 0, 0)"});
  // Every permutation sorts the same way.
  std::reverse(keys.begin(), keys.end());
  std::sort(keys.begin(), keys.end());
  CHECK(keys == sorted);
  // <=> agrees with ==.
  for (const auto& a : sorted)
    for (const auto& b : sorted) CHECK(std::is_eq(a <=> b) == (a == b));
}

TEST_CASE("key names are interned: the same text shares one string", "[key]") {
  weft::Key plain("x");
  weft::Key tokened("x", kToken);
  weft::Key chunk("('x', 3)");
  weft::Key parsed("x-" + kTokenHex);
  CHECK(plain.name().data() == tokened.name().data());
  CHECK(plain.name().data() == chunk.name().data());
  CHECK(plain.name().data() == parsed.name().data());
  CHECK(plain.name().data() != weft::Key("y").name().data());

  std::string text = "interned-name";
  const weft::detail::InternedName* first = weft::detail::intern(text);
  CHECK(weft::detail::intern(std::string_view("interned-name")) == first);
  CHECK(first->text == "interned-name");
  CHECK(first->hash == weft::detail::intern("interned-name")->hash);
  CHECK(weft::Key(first, kToken) == weft::Key("interned-name", kToken));
}

TEST_CASE("interning is thread-safe", "[key]") {
  constexpr int kThreads = 4;
  constexpr int kNames = 500;
  std::vector<std::vector<const weft::detail::InternedName*>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&seen, t] {
      for (int i = 0; i < kNames; ++i)
        seen[t].push_back(weft::detail::intern("thread-name-" + std::to_string(i)));
    });
  for (auto& th : threads) th.join();
  for (int t = 1; t < kThreads; ++t) CHECK(seen[t] == seen[0]);
  std::set<const weft::detail::InternedName*> distinct(seen[0].begin(), seen[0].end());
  CHECK(distinct.size() == kNames);
  CHECK(seen[0][7]->text == "thread-name-7");
}

TEST_CASE("keys with unusual names round-trip", "[key]") {
  weft::Key quoted("it's", {1});
  CHECK(weft::Key(quoted.str()) == quoted);
  weft::Key unnamed("", kToken);
  CHECK(weft::Key(unnamed.str()) == unnamed);
}
