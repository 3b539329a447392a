// weft/array/random.hpp: the ARS streams against Random123, statistical
// properties of every distribution (bounds of several standard errors, so a
// correct generator fails with negligible probability), reproducibility per
// seed and chunks across schedulers and task encoding, and argument errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "../src/array/kernels/elementwise.hpp"
#include "../src/array/kernels/random.hpp"
#include "array/block_inputs.hpp"
#include "array/numpy_oracle.hpp"
#include "weft/array/creation.hpp"
#include "weft/array/elementwise.hpp"
#include "weft/array/random.hpp"
#include "weft/array/reductions.hpp"
#include "weft/detail/task_wire.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

// Random123's ARS needs AES-NI: compiled for it here (its feature test reads
// the compiler's flags, not this pragma), called only where the CPU has it.
#include <immintrin.h>
#pragma GCC push_options
#pragma GCC target("aes")
#define R123_USE_AES_NI 1
#include <Random123/ars.h>
namespace {
// Random123's ars1xm128i with 7 rounds of the counter {group, block | stream << 48}
// under the key {key, 0}.
std::array<std::uint64_t, 2> random123_ars(std::uint64_t key, std::uint64_t block, std::uint32_t stream,
                                          std::uint64_t group) {
  ars1xm128i_ctr_t counter;
  ars1xm128i_key_t ars_key;
  counter.v[0].m = _mm_set_epi64x(static_cast<long long>(block | std::uint64_t{stream} << 48),
                                  static_cast<long long>(group));
  ars_key.v[0].m = _mm_set_epi64x(0, static_cast<long long>(key));
  std::array<std::uint64_t, 2> out;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out.data()), ars1xm128i_R(7, counter, ars_key).v[0].m);
  return out;
}

}  // namespace
#pragma GCC pop_options

namespace wa = weft::array;
namespace wr = weft::array::random;

namespace {

struct Moments {
  double mean = 0, var = 0, min = HUGE_VAL, max = -HUGE_VAL;
  std::int64_t n = 0;
};
Moments moments(const wa::NDArray& a) {
  const std::vector<double> v = a.to_vector<double>();
  Moments m;
  m.n = static_cast<std::int64_t>(v.size());
  for (double x : v) {
    m.mean += x;
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
  }
  m.mean /= static_cast<double>(m.n);
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= static_cast<double>(m.n);
  return m;
}

// The sample mean is within 6 standard errors of `mean`, the variance within 3%.
void check_moments(const wa::NDArray& a, double mean, double var) {
  const Moments m = moments(a);
  INFO("mean " << m.mean << " var " << m.var << " over " << m.n);
  CHECK(std::abs(m.mean - mean) < 6 * std::sqrt(var / static_cast<double>(m.n)));
  CHECK(std::abs(m.var - var) < 0.03 * var);
}

void check_error(const std::function<void()>& f, const std::string& id) {
  try {
    f();
    FAIL("no error; expected " << id);
  } catch (const weft::Error& e) {
    CHECK(e.id() == id);
  }
}

// Every element's count is within 6 standard deviations of n * p.
void check_frequencies(const wa::NDArray& a, const std::vector<double>& p) {
  std::vector<std::int64_t> count(p.size(), 0);
  std::int64_t outside = 0;
  for (std::int64_t v : a.to_vector<std::int64_t>()) {
    if (v < 0 || v >= static_cast<std::int64_t>(p.size())) ++outside;
    else ++count[static_cast<std::size_t>(v)];
  }
  CHECK(outside == 0);
  const auto n = static_cast<double>(a.size());
  for (std::size_t i = 0; i < p.size(); ++i) {
    INFO("value " << i << ": " << count[i] << " of " << n);
    CHECK(std::abs(static_cast<double>(count[i]) - n * p[i]) <= 6 * std::sqrt(n * p[i] * (1 - p[i])));
  }
}

bool is_permutation_of_range(const wa::NDArray& a) {
  std::vector<std::int64_t> v = a.to_vector<std::int64_t>();
  std::sort(v.begin(), v.end());
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

}  // namespace

namespace {

namespace k = wa::kernels;

// Runs `check` on every generator path this CPU has, then restores the best.
void for_each_generator_path(const std::function<void()>& check) {
  struct Restore {
    ~Restore() { k::set_ars_isa(k::best_ars_isa()); }
  } restore;
  for (int isa = 0; isa <= static_cast<int>(k::best_ars_isa()); ++isa) {
    INFO("generator path " << isa);
    k::set_ars_isa(static_cast<k::ArsIsa>(isa));
    check();
  }
}

double unit(std::uint64_t word) { return static_cast<double>(word >> 11) * 0x1p-53; }

}  // namespace

TEST_CASE("the ARS words are Random123's ars1xm128i bit for bit on every generator path", "[array-random]") {
  if (!__builtin_cpu_supports("aes")) {
    WARN("this CPU has no AES-NI: Random123's ARS cannot run as a reference here");
    return;
  }
  const std::uint64_t key = 0x0123456789abcdefULL;
  const std::uint64_t block = 0x0000abcd12345678ULL;
  const std::uint64_t first = 0xfffffffffffffff0ULL;  // group numbers wrap around
  for_each_generator_path([&] {
    for (const std::uint32_t stream : {0u, 3u}) {
      std::vector<std::uint64_t> words(2 * 37);
      k::ars_words(key, block, stream, first, words.data(), 37);
      for (std::uint64_t i = 0; i < 37; ++i) {
        const auto want = random123_ars(key, block, stream, first + i);
        CHECK(words[2 * i] == want[0]);
        CHECK(words[2 * i + 1] == want[1]);
        CHECK(k::ars_group(key, block, stream, first + i) == want);
      }
    }
    // Doubles take the top 53 bits of a word: element 3 is group 1's high word.
    std::vector<double> u(5);
    k::uniform_doubles(key, block, 0, u.data(), 5);
    CHECK(u[3] == unit(random123_ars(key, block, 0, 1)[1]));
  });
}

TEST_CASE("uniform doubles of any run or any positions of a block are its stream's", "[array-random]") {
  const std::uint64_t key = 0xfedcba9876543210ULL;
  const std::uint64_t block = 0x0000123487654321ULL;
  // Element i of the block is from group i / 2 (its low word when even, its high word when odd).
  auto reference = [&](std::uint64_t element) { return unit(k::ars_group(key, block, 0, element / 2)[element % 2]); };
  const std::uint64_t start = 2 * 0xfffffff0ULL;
  for_each_generator_path([&] {
    for (const std::uint64_t first : {start, start + 1, std::uint64_t{0}, std::uint64_t{7}}) {
      for (const std::int64_t n : {1, 2, 15, 16, 17, 33, 61}) {
        INFO("first " << first << " n " << n);
        std::vector<double> u(static_cast<std::size_t>(n));
        k::uniform_doubles(key, block, first, u.data(), n);
        for (std::int64_t i = 0; i < n; ++i)
          CHECK(u[static_cast<std::size_t>(i)] == reference(first + static_cast<std::uint64_t>(i)));
      }
    }
    // Any positions, in any order, repeated: each element's own value.
    std::vector<std::uint64_t> positions;
    for (std::uint64_t i = 0; i < 1000; ++i) positions.push_back(start + (i * 7919) % 613);
    std::vector<double> at(positions.size());
    k::uniform_doubles_at(key, block, positions.data(), at.data(), static_cast<std::int64_t>(positions.size()));
    for (std::size_t i = 0; i < positions.size(); ++i) CHECK(at[i] == reference(positions[i]));
    // Groups a stride apart (two rows of a transposed block), split into halves.
    for (const std::int64_t n : {5, 16, 40}) {
      std::vector<double> evens(static_cast<std::size_t>(n)), odds(static_cast<std::size_t>(n));
      k::uniform_halves_strided(key, block, 11, 500, evens.data(), odds.data(), n);
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint64_t group = 11 + 500 * static_cast<std::uint64_t>(i);
        CHECK(evens[static_cast<std::size_t>(i)] == reference(2 * group));
        CHECK(odds[static_cast<std::size_t>(i)] == reference(2 * group + 1));
      }
    }
  });
  // Other blocks and keys give other values.
  std::vector<double> other(16), mine(16);
  k::uniform_doubles(key, block, 0, mine.data(), 16);
  k::uniform_doubles(key, block + 1, 0, other.data(), 16);
  CHECK(other != mine);
  k::uniform_doubles(key + 1, block, 0, other.data(), 16);
  CHECK(other != mine);
}

TEST_CASE("every distribution's blocks are the same on every generator path", "[array-random]") {
  const std::uint64_t key = 0x5eed;
  std::vector<wa::NDArray> first_path;
  for_each_generator_path([&] {
    std::vector<wa::NDArray> blocks;
    for (const auto distribution : {k::Distribution::uniform, k::Distribution::normal, k::Distribution::exponential})
      blocks.push_back(k::random_block({distribution, wa::DType::float64, key, 9, 1.0, 2.0, 0, 0}, {37, 3}));
    // A range just over 2^63 rejects about half the draws: redraws from streams 1, 2, ...
    blocks.push_back(k::random_block(
        {k::Distribution::integers, wa::DType::uint64, key, 9, 0, 0, 0, (std::uint64_t{1} << 63) + 12345}, {101}));
    blocks.push_back(k::choice_block({key, 4, 10}, {33}, {0.1, 0.5, 0.5, 0.7, 1.0}, {}));
    blocks.push_back(k::sample_without_replacement({key, 1000}, {50}, {}));
    blocks.push_back(k::sample_without_replacement({key, 5}, {3}, {0.1, 0.2, 0.3, 0.2, 0.2}));
    if (first_path.empty()) first_path = blocks;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      INFO("block " << i);
      CHECK(blocks[i].equals(first_path[i]));
    }
  });
  CHECK(first_path[3].to_vector<std::uint64_t>() != std::vector<std::uint64_t>(101, first_path[3].at<std::uint64_t>({0})));
}

TEST_CASE("uniform arrays are generated where they are read, transposed too", "[array-random]") {
  wr::RandomState state(5);
  const wa::Array x = state.random_sample({37, 23}, wa::Chunks{{10, 10, 10, 7}, {8, 8, 7}});
  const wa::Array y = state.uniform(-2.0, 3.0, {6, 5, 4}, {4, 2, 3});
  // x is a fused program with no input blocks: its values are the random
  // block kernel's, block by block.
  const k::ElementwiseLayer* layer = k::elementwise_layer(x);
  REQUIRE(layer != nullptr);
  CHECK(layer->leaves().empty());
  const std::uint64_t key = k::RandomLeaf::of(layer->program().at(0)).key;
  const wa::NDArray xm = weft::test::computed_everywhere(x);
  const std::vector<std::int64_t> rows{0, 10, 20, 30, 37}, cols{0, 8, 16, 23};
  for (std::size_t i = 0; i + 1 < rows.size(); ++i) {
    for (std::size_t j = 0; j + 1 < cols.size(); ++j) {
      const wa::Shape shape{rows[i + 1] - rows[i], cols[j + 1] - cols[j]};
      const k::RandomSpec spec{k::Distribution::uniform, wa::DType::float64, key, i * 3 + j, 0.0, 1.0, 0, 0};
      const wa::Shape offset{rows[i], cols[j]};
      CHECK(xm.block(offset, shape).equals(k::random_block(spec, shape)));
    }
  }
  // Transposed: the same values, whether read fused or as a block.
  const wa::Array xt = x.T();
  CHECK(k::elementwise_layer(xt) != nullptr);
  const wa::NDArray xtm = weft::test::computed_everywhere(xt);
  for (std::int64_t i = 0; i < 37; i += 3)
    for (std::int64_t j = 0; j < 23; ++j) CHECK(xtm.at<double>({j, i}) == xm.at<double>({i, j}));
  const wa::NDArray ym = weft::test::computed_everywhere(y);
  CHECK(ym.to_vector<double>() != std::vector<double>(120, ym.at<double>({0, 0, 0})));
  const wa::NDArray yt = weft::test::computed_everywhere(y.transpose({2, 0, 1}));
  for (std::int64_t a = 0; a < 6; ++a)
    for (std::int64_t b = 0; b < 5; ++b)
      for (std::int64_t c = 0; c < 4; ++c) CHECK(yt.at<double>({c, a, b}) == ym.at<double>({a, b, c}));
  // Fused into an expression (with equal chunks, or rechunked to common
  // ones) and into a reduction: the same elements.
  for (const wa::ChunkSpec& chunks : {wa::ChunkSpec(8), wa::ChunkSpec(wa::Chunks{{10, 10, 3}, {8, 8, 7}})}) {
    const wa::Array s = state.random_sample({23, 23}, chunks);
    const wa::NDArray sm = weft::test::computed_everywhere(s);
    const wa::NDArray sum = weft::test::computed_everywhere(s + s.T());
    for (std::int64_t i = 0; i < 23; ++i)
      for (std::int64_t j = 0; j < 23; ++j) CHECK(sum.at<double>({i, j}) == sm.at<double>({i, j}) + sm.at<double>({j, i}));
  }
  // Rows long enough to be tiles alone (a broadcast row read in place): a
  // transposed block's even row makes the next row too, odd row counts
  // included (blocks of 600 and 501 rows).
  {
    const wa::Array big = state.random_sample({1101, 1101}, 600);
    const wa::NDArray bm = big.compute();
    const wa::NDArray row_means = big.mean(0).compute();
    const wa::NDArray got = weft::test::computed_everywhere(big + big.T() - big.mean(0));
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < 1101; ++i)
      for (std::int64_t j = 0; j < 1101; ++j)
        wrong += got.at<double>({i, j}) != bm.at<double>({i, j}) + bm.at<double>({j, i}) - row_means.at<double>({j});
    CHECK(wrong == 0);
  }
  const wa::NDArray means = weft::test::computed_everywhere(x.mean(0));
  for (std::int64_t j = 0; j < 23; ++j) {
    double total = 0;
    for (std::int64_t i = 0; i < 37; ++i) total += xm.at<double>({i, j});
    CHECK(means.at<double>({j}) == Approx(total / 37).epsilon(1e-13));
  }
  // The expression of the array-expr benchmark never makes a block of x.
  const wa::Array z = wr::RandomState(8).random_sample({40, 40}, 10);
  const wa::Array expr = (z + z.T() - z.mean(0)).sum();
  const weft::Graph graph = expr.graph();
  for (const weft::Key& task : graph.keys()) CHECK(task.str().find(z.name()) == std::string::npos);
  CHECK(weft::test::computed_everywhere(expr).item<double>() == Approx(weft::test::computed_everywhere(z.sum()).item<double>()).epsilon(1e-12));
}

TEST_CASE("uniform distributions have the right range and moments", "[array-random]") {
  wr::RandomState state(42);
  const wa::NDArray u = weft::test::computed_everywhere(state.random_sample({1000, 500}, {300, 170}));
  CHECK(u.dtype() == wa::DType::float64);
  const Moments m = moments(u);
  CHECK(m.min >= 0.0);
  CHECK(m.max < 1.0);
  check_moments(u, 0.5, 1.0 / 12);

  const wa::NDArray w = weft::test::computed_everywhere(state.uniform(-3, 5, {200001}, 70000));
  const Moments mw = moments(w);
  CHECK(mw.min >= -3.0);
  CHECK(mw.max < 5.0);
  check_moments(w, 1.0, 64.0 / 12);

  const wa::NDArray scalar = weft::test::computed_everywhere(state.random());
  CHECK(scalar.shape().empty());
  const wa::NDArray none = weft::test::computed_everywhere(state.random({0, 4}, 2));
  CHECK(none.shape() == wa::Shape{0, 4});
}

TEST_CASE("normal and exponential have the right moments and tails", "[array-random]") {
  wr::RandomState state(7);
  const wa::NDArray z = weft::test::computed_everywhere(state.standard_normal({400000}, 100001));
  check_moments(z, 0.0, 1.0);
  const std::vector<double> v = z.to_vector<double>();
  const auto within_one = std::count_if(v.begin(), v.end(), [](double x) { return std::abs(x) < 1; });
  const double p1 = std::erf(1 / std::sqrt(2.0));
  CHECK(std::abs(static_cast<double>(within_one) / 400000.0 - p1) < 6 * std::sqrt(p1 * (1 - p1) / 400000.0));
  check_moments(weft::test::computed_everywhere(state.normal(10, 3, {300, 700}, {128, 128})), 10.0, 9.0);

  const wa::NDArray e = weft::test::computed_everywhere(state.exponential(2.5, {400000}, 65536));
  CHECK(moments(e).min >= 0);
  check_moments(e, 2.5, 6.25);
  check_moments(weft::test::computed_everywhere(wr::exponential(1.0, {100000})), 1.0, 1.0);
}

TEST_CASE("randint draws every integer of the range equally often", "[array-random]") {
  wr::RandomState state(3);
  const wa::NDArray a = weft::test::computed_everywhere(state.randint(2, 9, {70000}, 9999));
  CHECK(a.dtype() == wa::DType::int64);
  std::vector<std::int64_t> shifted = a.to_vector<std::int64_t>();
  for (auto& x : shifted) x -= 2;
  check_frequencies(wa::NDArray::from(shifted, {70000}), std::vector<double>(7, 1.0 / 7));

  const wa::NDArray small = weft::test::computed_everywhere(state.randint(5, std::nullopt, {3000}, 1000, wa::DType::uint8));
  CHECK(small.dtype() == wa::DType::uint8);
  check_frequencies(small.astype(wa::DType::int64), std::vector<double>(5, 0.2));

  // The whole range of a dtype, and of int64.
  const std::vector<std::int64_t> bytes =
      weft::test::computed_everywhere(state.randint(-128, 128, {50000}, 20000, wa::DType::int8)).to_vector<std::int64_t>();
  CHECK(*std::min_element(bytes.begin(), bytes.end()) == -128);
  CHECK(*std::max_element(bytes.begin(), bytes.end()) == 127);
  const auto lowest = std::numeric_limits<std::int64_t>::min();
  const auto highest = std::numeric_limits<std::int64_t>::max();
  const wa::NDArray wide = weft::test::computed_everywhere(state.randint(lowest, highest, {20000}));
  const Moments mw = moments(wide);
  CHECK(std::abs(mw.mean) < 6 * 0x1p63 / std::sqrt(3.0 * 20000));
  CHECK(mw.max > 0.9 * 0x1p63);
}

TEST_CASE("choice samples with and without replacement", "[array-random]") {
  wr::RandomState state(11);
  check_frequencies(weft::test::computed_everywhere(state.choice(5, wa::Shape{20000}, true, std::nullopt, 3000)),
                    std::vector<double>(5, 0.2));
  const std::vector<double> p{0.1, 0.2, 0.3, 0.4, 0.0};
  check_frequencies(weft::test::computed_everywhere(state.choice(5, wa::Shape{100, 300}, true, p, {30, 70})), p);

  // Elements of an array population, in its dtype.
  const wa::NDArray population = wa::NDArray::from<float>({1.5f, -2.0f, 7.25f});
  const wa::NDArray drawn = weft::test::computed_everywhere(state.choice(population, wa::Shape{500}, true, std::nullopt, 128));
  CHECK(drawn.dtype() == wa::DType::float32);
  std::set<float> values;
  for (float x : drawn.to_vector<float>()) values.insert(x);
  CHECK(values == std::set<float>{1.5f, -2.0f, 7.25f});
  CHECK(weft::test::computed_everywhere(state.choice(4)).shape().empty());

  // Without replacement: a whole sample is a permutation; a part has no repeats.
  CHECK(is_permutation_of_range(weft::test::computed_everywhere(state.choice(50, wa::Shape{5, 10}, false, std::nullopt, {2, 3}))));
  const wa::Array chunked = wa::from_array(wa::NDArray::from<std::int64_t>({10, 11, 12, 13, 14, 15, 16}), 3);
  const std::vector<double> q{0.3, 0.0, 0.2, 0.1, 0.0, 0.25, 0.15};
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::int64_t> picked =
        weft::test::computed_everywhere(state.choice(chunked, wa::Shape{5}, false, q, 2)).to_vector<std::int64_t>();
    std::set<std::int64_t> distinct(picked.begin(), picked.end());
    CHECK(distinct.size() == 5);
    CHECK(distinct.count(11) == 0);
    CHECK(distinct.count(14) == 0);
  }
  // Weighted sampling without replacement: the first pick follows p.
  std::vector<std::int64_t> firsts;
  for (int trial = 0; trial < 1000; ++trial)
    firsts.push_back(weft::test::computed_everywhere(state.choice(4, wa::Shape{2}, false, std::vector<double>{0.5, 0.3, 0.2, 0.0}))
                         .to_vector<std::int64_t>()[0]);
  check_frequencies(wa::NDArray::from(firsts, {1000}), {0.5, 0.3, 0.2, 0.0});
}

TEST_CASE("permutation shuffles a range or an array's rows", "[array-random]") {
  wr::RandomState state(5);
  const wa::NDArray p = weft::test::computed_everywhere(state.permutation(1000, 128));
  CHECK(is_permutation_of_range(p));
  std::vector<std::int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(p.to_vector<std::int64_t>() != identity);
  CHECK(weft::test::computed_everywhere(state.permutation(0)).size() == 0);

  // Rows of a 10 x 3 array: row r holds 3r, 3r+1, 3r+2.
  std::vector<std::int64_t> rows(30);
  std::iota(rows.begin(), rows.end(), 0);
  const wa::Array x = wa::from_array(wa::NDArray::from(rows, {10, 3}), {3, 2});
  const wa::Array shuffled = state.permutation(x);
  CHECK(shuffled.chunks() == x.chunks());
  const std::vector<std::int64_t> out = weft::test::computed_everywhere(shuffled).to_vector<std::int64_t>();
  std::vector<std::int64_t> firsts;
  for (std::size_t r = 0; r < 10; ++r) {
    CHECK(out[3 * r] % 3 == 0);
    CHECK(out[3 * r + 1] == out[3 * r] + 1);
    CHECK(out[3 * r + 2] == out[3 * r] + 2);
    firsts.push_back(out[3 * r] / 3);
  }
  CHECK(is_permutation_of_range(wa::NDArray::from(firsts, {10})));
  const wa::NDArray vector = weft::test::computed_everywhere(wr::permutation(wa::NDArray::from<double>({1, 2, 3, 4})));
  std::vector<double> sorted = vector.to_vector<double>();
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<double>{1, 2, 3, 4});
}

TEST_CASE("random values depend on the seed and chunks only", "[array-random]") {
  wr::RandomState a(123);
  wr::RandomState b(123);
  const wa::Array x1 = a.normal(0, 1, {50, 40}, {16, 16});
  const wa::Array x2 = b.normal(0, 1, {50, 40}, {16, 16});
  CHECK(x1.name() == x2.name());
  CHECK(weft::test::computed_everywhere(x1).equals(weft::test::computed_everywhere(x2)));
  // The next call of a state differs; so does another seed, and other chunks.
  CHECK_FALSE(weft::test::computed_everywhere(a.normal(0, 1, {50, 40}, {16, 16})).equals(weft::test::computed_everywhere(x1)));
  CHECK_FALSE(weft::test::computed_everywhere(wr::RandomState(124).normal(0, 1, {50, 40}, {16, 16})).equals(weft::test::computed_everywhere(x1)));
  CHECK_FALSE(weft::test::computed_everywhere(wr::RandomState(123).normal(0, 1, {50, 40}, {25, 40})).equals(weft::test::computed_everywhere(x1)));
  a.seed(123);
  CHECK(weft::test::computed_everywhere(a.normal(0, 1, {50, 40}, {16, 16})).equals(weft::test::computed_everywhere(x1)));
  // The free functions take a fresh key per call; seed() restarts them.
  CHECK(wr::random_sample({3}).name() != wr::random_sample({3}).name());
  wr::seed(9);
  const wa::NDArray first = weft::test::computed_everywhere(wr::randint(0, 1000, {20}));
  wr::seed(9);
  CHECK(weft::test::computed_everywhere(wr::randint(0, 1000, {20})).equals(first));

  // Every block's task, encoded for another rank and decoded, gives the same block.
  wr::RandomState c(77);
  const std::vector<wa::Array> arrays{
      c.random_sample({5, 4}, 2), c.normal(1, 2, {7}, 3), c.exponential(2, {6}, 4),
      c.randint(-5, 5, {9}, 4, wa::DType::int16), c.choice(6, wa::Shape{8}, true, std::vector<double>(6, 1.0 / 6), 3),
      c.choice(6, wa::Shape{4}, false, std::nullopt, 2), c.permutation(9, 4)};
  for (const wa::Array& arr : arrays) {
    INFO(arr.name());
    const std::int64_t index[] = {1, 0};
    const weft::TaskPtr task = arr.block_task(std::span<const std::int64_t>(index, static_cast<std::size_t>(arr.ndim())));
    std::vector<std::byte> bytes;
    weft::detail::encode_task(*task, bytes);
    std::span<const std::byte> in(bytes);
    const weft::TaskPtr decoded = weft::detail::decode_task(in);
    std::vector<weft::Value> inputs;
    for (const weft::TaskRef& dep : task->dependencies()) inputs.push_back(dep.task->run({}));
    std::vector<const weft::Value*> pointers;
    for (const weft::Value& v : inputs) pointers.push_back(&v);
    CHECK(decoded->run(pointers).get<wa::NDArray>().equals(task->run(pointers).get<wa::NDArray>()));
  }
}

TEST_CASE("random arguments are checked before any task exists", "[array-random]") {
  wr::RandomState s(1);
  check_error([&] { s.random_sample({-1}); }, "value.bad-shape");
  check_error([&] { s.random_sample({4}, wa::Chunks{{3}}); }, "value.bad-chunks");
  check_error([&] { s.normal(0, -1, {3}); }, "value.bad-scale");
  check_error([&] { s.exponential(-2, {3}); }, "value.bad-scale");
  check_error([&] { s.randint(5, 5, {3}); }, "value.bad-range");
  check_error([&] { s.randint(0, 300, {3}, {}, wa::DType::int8); }, "value.bad-range");
  check_error([&] { s.randint(-1, 3, {3}, {}, wa::DType::uint32); }, "value.bad-range");
  check_error([&] { s.randint(0, 3, {3}, {}, wa::DType::float64); }, "type.randint-dtype");
  check_error([&] { s.choice(3, wa::Shape{4}, false); }, "value.sample-too-large");
  check_error([&] { s.choice(3, wa::Shape{3}, false, std::vector<double>{0.5, 0.5, 0.0}); }, "value.sample-too-large");
  check_error([&] { s.choice(3, wa::Shape{2}, true, std::vector<double>{0.5, 0.6, 0.0}); }, "value.bad-probabilities");
  check_error([&] { s.choice(3, wa::Shape{2}, true, std::vector<double>{0.5, 0.5}); }, "value.bad-probabilities");
  check_error([&] { s.choice(2, wa::Shape{2}, true, std::vector<double>{1.5, -0.5}); }, "value.bad-probabilities");
  check_error([&] { s.choice(0, wa::Shape{2}); }, "value.empty-population");
  check_error([&] { s.choice(wa::zeros({2, 2}), wa::Shape{2}); }, "value.bad-ndim");
  check_error([&] { s.permutation(-1); }, "value.bad-shape");
  check_error([&] { s.permutation(wa::NDArray::scalar(1.0)); }, "value.bad-ndim");
}
