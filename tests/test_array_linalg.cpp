// matmul, dot, tensordot, vdot, outer against NumPy: dtypes, 1-d and 0-d
// operands, batches, odd and mismatched chunkings, transposed and strided
// blocks, empty operands; one task per output block; errors before tasks.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "array/block_inputs.hpp"
#include "array/numpy_oracle.hpp"
#include "weft/array/linalg.hpp"
#include "weft/compute.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
using Catch::Matchers::Contains;
using weft::test::chunked;
using weft::test::sample;

namespace {

struct Case {
  std::string numpy;  ///< the NumPy expression
  wa::Array got;
};

double tolerance(wa::DType t) {
  return t == wa::DType::float32 || t == wa::DType::complex64 ? 1e-5 : 1e-10;
}

/// Evaluates every case's NumPy expression in one call and compares each
/// with the array computed on each of test_schedulers().
void check_cases(const std::vector<Case>& cases, const weft::test::NumpyInputs& inputs) {
  std::string code = "out = [";
  for (const Case& c : cases) code += c.numpy + ", ";
  code += "]";
  const std::vector<wa::NDArray> want = weft::test::numpy(code, inputs);
  REQUIRE(want.size() == cases.size());
  for (const auto scheduler : weft::test::test_schedulers())
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const wa::NDArray got = cases[i].got.compute(scheduler);
      weft::test::check_close(got, want[i], tolerance(want[i].dtype()), 1e-12, true,
                              cases[i].numpy + " on " + std::string(weft::to_string(scheduler.kind)));
    }
}

}  // namespace

TEST_CASE("2-d products on odd chunkings", "[array-linalg]") {
  const wa::NDArray a = sample(wa::DType::float64, {7, 5}, 1);
  const wa::NDArray b = sample(wa::DType::float64, {5, 6}, 2);
  const wa::Array a_odd = chunked(a, {{3, 3, 1}, {2, 2, 1}});
  const wa::Array b_odd = chunked(b, {{2, 2, 1}, {1, 5}});
  const wa::Array a_one = chunked(a, {{7}, {5}});
  const wa::Array b_one = chunked(b, {{5}, {6}});
  const wa::Array a_unit = chunked(a, {{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}});
  const wa::Array b_unit = chunked(b, {{1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1}});
  // Contracted axes chunked differently: rechunked to common blocks.
  const wa::Array a_other = chunked(a, {{7}, {3, 2}});
  const wa::Array b_other = chunked(b, {{1, 4}, {6}});
  check_cases({{"a @ b", wa::matmul(a_odd, b_odd)},
               {"np.dot(a, b)", wa::dot(a_odd, b_odd)},
               {"np.tensordot(a, b, 1)", wa::tensordot(a_odd, b_odd, 1)},
               {"a.dot(b)", a_odd.dot(b_odd)},
               {"a @ b", wa::matmul(a_one, b_one)},
               {"a @ b", wa::matmul(a_unit, b_unit)},
               {"a @ b", wa::matmul(a_odd, b_unit)},
               {"a @ b", wa::matmul(a_other, b_other)},
               {"np.tensordot(b, a, ([0], [1]))", wa::tensordot(b_odd, a_odd, {0}, {1})}},
              {{"a", a}, {"b", b}});
  CHECK(wa::matmul(a_odd, b_odd).chunks() == wa::Chunks{{3, 3, 1}, {1, 5}});
  CHECK(wa::matmul(a_other, b_other).chunks() == wa::Chunks{{7}, {6}});
}

TEST_CASE("matmul and dot keep NumPy's result dtype for every dtype", "[array-linalg]") {
  using D = wa::DType;
  std::vector<Case> cases;
  weft::test::NumpyInputs inputs;
  const std::vector<std::pair<D, D>> pairs = {
      {D::bool_, D::bool_},       {D::int8, D::int8},         {D::uint8, D::uint8},   {D::int16, D::uint16},
      {D::int32, D::int32},       {D::uint32, D::uint32},     {D::int64, D::int64},   {D::uint64, D::uint64},
      {D::float32, D::float32},   {D::float64, D::float64},   {D::complex64, D::complex64},
      {D::complex128, D::complex128}, {D::int32, D::float32}, {D::int8, D::uint8},    {D::bool_, D::int64},
      {D::float32, D::complex64}, {D::float64, D::complex64}};
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const std::string a = "a" + std::to_string(i), b = "b" + std::to_string(i);
    const wa::NDArray x = sample(pairs[i].first, {4, 5}, i + 1);
    const wa::NDArray y = sample(pairs[i].second, {5, 3}, i + 100);
    inputs.emplace_back(a, x);
    inputs.emplace_back(b, y);
    const wa::Array xa = chunked(x, {{3, 1}, {2, 3}});
    const wa::Array ya = chunked(y, {{2, 3}, {2, 1}});
    cases.push_back({"np.matmul(" + a + ", " + b + ")", wa::matmul(xa, ya)});
    cases.push_back({"np.dot(" + b + ".T, " + a + ".T)",
                     wa::dot(chunked(y.transpose(std::vector<int>{1, 0}), {{2, 1}, {2, 3}}),
                             chunked(x.transpose(std::vector<int>{1, 0}), {{2, 3}, {3, 1}}))});
  }
  check_cases(cases, inputs);
}

TEST_CASE("1-d and 0-d operands", "[array-linalg]") {
  const wa::NDArray v = sample(wa::DType::float64, {5}, 1);
  const wa::NDArray w = sample(wa::DType::float64, {5}, 2);
  const wa::NDArray m = sample(wa::DType::float64, {5, 3}, 3);
  const wa::NDArray n = sample(wa::DType::float64, {4, 5}, 4);
  const wa::NDArray s = wa::NDArray::scalar(2.5);
  const wa::NDArray cv = sample(wa::DType::complex128, {3, 4}, 5);
  const wa::NDArray cw = sample(wa::DType::complex128, {3, 4}, 6);
  const wa::Array va = chunked(v, {{2, 2, 1}}), wa_ = chunked(w, {{2, 2, 1}});
  const wa::Array ma = chunked(m, {{2, 2, 1}, {2, 1}}), na = chunked(n, {{3, 1}, {2, 2, 1}});
  const wa::Array sa = chunked(s, {});
  const wa::Array cva = chunked(cv, {{2, 1}, {1, 3}}), cwa = chunked(cw, {{2, 1}, {1, 3}});
  check_cases({{"v @ m", wa::matmul(va, ma)},
               {"n @ v", wa::matmul(na, va)},
               {"v @ w", wa::matmul(va, wa_)},
               {"np.dot(v, w)", wa::dot(va, wa_)},
               {"np.dot(n, v)", wa::dot(na, va)},
               {"np.dot(v, m)", wa::dot(va, ma)},
               {"np.dot(s, n)", wa::dot(sa, na)},
               {"np.dot(n, s)", wa::dot(na, sa)},
               {"np.dot(s, s)", wa::dot(sa, sa)},
               {"np.outer(v, w)", wa::outer(va, wa_)},
               {"np.tensordot(v, w, 0)", wa::tensordot(va, wa_, 0)},
               {"np.vdot(cv, cw)", wa::vdot(cva, cwa)},
               {"np.vdot(v, w)", wa::vdot(va, wa_)}},
              {{"v", v}, {"w", w}, {"m", m}, {"n", n}, {"s", s}, {"cv", cv}, {"cw", cw}});
}

TEST_CASE("batched matmul broadcasts the leading axes", "[array-linalg]") {
  const wa::NDArray a = sample(wa::DType::float64, {2, 1, 3, 4}, 1);
  const wa::NDArray b = sample(wa::DType::float64, {3, 4, 2}, 2);
  const wa::NDArray c = sample(wa::DType::float32, {3, 2, 4}, 3);
  const wa::NDArray d = sample(wa::DType::float32, {3, 4, 5}, 4);
  const wa::NDArray v = sample(wa::DType::float64, {4}, 5);
  const wa::Array aa = chunked(a, {{1, 1}, {1}, {2, 1}, {3, 1}});
  const wa::Array ba = chunked(b, {{2, 1}, {3, 1}, {2}});
  const wa::Array ca = chunked(c, {{2, 1}, {2}, {4}});
  const wa::Array da = chunked(d, {{1, 2}, {4}, {3, 2}});  // batch chunks differ from c's
  const wa::Array va = chunked(v, {{3, 1}});
  check_cases({{"np.matmul(a, b)", wa::matmul(aa, ba)},
               {"np.matmul(c, d)", wa::matmul(ca, da)},
               {"np.matmul(a, v)", wa::matmul(aa, va)},
               {"np.matmul(v, b)", wa::matmul(va, ba)},
               {"np.matmul(b.transpose(0, 2, 1), d[0])",
                wa::matmul(chunked(b.transpose(std::vector<int>{0, 2, 1}), {{2, 1}, {2}, {3, 1}}),
                           chunked(d.slice(0, 0, 1).reshape({4, 5}), {{3, 1}, {5}}))}},
              {{"a", a}, {"b", b}, {"c", c}, {"d", d}, {"v", v}});
  CHECK(wa::matmul(aa, ba).shape() == wa::Shape{2, 3, 3, 2});
}

TEST_CASE("tensordot over pairs of axes", "[array-linalg]") {
  const wa::NDArray x = sample(wa::DType::float64, {3, 4, 5}, 1);
  const wa::NDArray y = sample(wa::DType::float64, {4, 5, 2}, 2);
  const wa::NDArray z = sample(wa::DType::int32, {5, 3, 4}, 3);
  const wa::Array xa = chunked(x, {{2, 1}, {4}, {2, 3}});
  const wa::Array ya = chunked(y, {{4}, {2, 3}, {1, 1}});
  const wa::Array za = chunked(z, {{2, 3}, {1, 2}, {1, 3}});
  check_cases({{"np.tensordot(x, y, 2)", wa::tensordot(xa, ya, 2)},
               {"np.tensordot(x, y)", wa::tensordot(xa, ya)},
               {"np.tensordot(x, y, ([1, 2], [0, 1]))", wa::tensordot(xa, ya, {1, 2}, {0, 1})},
               {"np.tensordot(x, z, ([2, 1], [0, 2]))", wa::tensordot(xa, za, {2, 1}, {0, 2})},
               {"np.tensordot(x, y, ([-1], [1]))", wa::tensordot(xa, ya, {-1}, {1})},
               {"np.tensordot(x, y, 0)", wa::tensordot(xa, ya, 0)},
               {"np.dot(x, y)", wa::dot(xa, ya)}},
              {{"x", x}, {"y", y}, {"z", z}});
}

TEST_CASE("transposed and strided blocks", "[array-linalg]") {
  using D = wa::DType;
  std::vector<Case> cases;
  weft::test::NumpyInputs inputs;
  int i = 0;
  for (D dtype : {D::float64, D::float32, D::complex128, D::int32}) {
    const std::string n = std::to_string(i++);
    const wa::NDArray base = sample(dtype, {6, 8}, 7);
    const wa::NDArray other = sample(dtype, {6, 3}, 8);
    const wa::NDArray t = base.transpose(std::vector<int>{1, 0});  // (8, 6), column-major
    const wa::NDArray strided = base.slice(1, 7, -1, -2);           // (6, 4), reversed, stride -2
    inputs.emplace_back("base" + n, base);
    inputs.emplace_back("other" + n, other);
    const wa::Array ta = chunked(t, {{3, 5}, {4, 2}});
    const wa::Array oa = chunked(other, {{4, 2}, {3}});
    cases.push_back({"base" + n + ".T @ other" + n, wa::matmul(ta, oa)});
    cases.push_back({"other" + n + ".T @ base" + n + ".T.T", wa::matmul(chunked(other.transpose(std::vector<int>{1, 0}), {{3}, {4, 2}}),
                                                                    chunked(base, {{4, 2}, {5, 3}}))});
    cases.push_back({"base" + n + "[:, 7::-2].T @ other" + n, wa::matmul(chunked(strided.transpose(std::vector<int>{1, 0}), {{2, 2}, {4, 2}}), oa)});
    cases.push_back({"base" + n + ".T[:, :1] @ other" + n + "[:1]",
                     wa::matmul(chunked(t.slice(1, 0, 1), {{3, 5}, {1}}), chunked(other.slice(0, 0, 1), {{1}, {3}}))});
  }
  check_cases(cases, inputs);
}

TEST_CASE("empty operands give empty or zero results", "[array-linalg]") {
  const wa::NDArray a = sample(wa::DType::float64, {0, 3});
  const wa::NDArray b = sample(wa::DType::float64, {3, 2});
  const wa::NDArray c = sample(wa::DType::float64, {3, 0});
  const wa::NDArray d = sample(wa::DType::float64, {0, 2});
  const wa::NDArray e = sample(wa::DType::int64, {3, 0});
  const wa::NDArray f = sample(wa::DType::int64, {0, 2});
  check_cases({{"a @ b", wa::matmul(chunked(a, {{0}, {2, 1}}), chunked(b, {{2, 1}, {2}}))},
               {"c @ d", wa::matmul(chunked(c, {{2, 1}, {0}}), chunked(d, {{0}, {1, 1}}))},
               {"e @ f", wa::matmul(chunked(e, {{2, 1}, {0}}), chunked(f, {{0}, {1, 1}}))}},
              {{"a", a}, {"b", b}, {"c", c}, {"d", d}, {"e", e}, {"f", f}});
}

TEST_CASE("one task per output block sums all block pairs", "[array-linalg]") {
  const wa::NDArray a = sample(wa::DType::float64, {8, 8}, 1);
  const wa::Array x = chunked(a, {{2, 2, 2, 2}, {2, 2, 2, 2}});
  const wa::Array c = wa::matmul(x, x);
  CHECK(c.graph().size() == 16 + 16);
  CHECK(c.block_task(std::vector<std::int64_t>{1, 2})->dependencies().size() == 8);
  // Block tasks can travel to other ranks.
  std::vector<std::byte> bytes;
  CHECK_NOTHROW(weft::detail::encode_task(*c.block_task(std::vector<std::int64_t>{0, 0}), bytes));
  CHECK_FALSE(bytes.empty());
}

TEST_CASE("idle threads that help a long contraction, or none, do not change its bits", "[array-linalg][help]") {
  // One output block, a contracted length of 5 gemm slices: the second thread
  // is idle from the start and joins at a slice boundary.
  for (const wa::DType dtype : {wa::DType::float64, wa::DType::complex128, wa::DType::int64}) {
    const wa::NDArray a = sample(dtype, {300, 1100}, 3), b = sample(dtype, {1100, 260}, 4);
    const wa::Array product = wa::matmul(chunked(a, {{300}, {1100}}), chunked(b, {{1100}, {260}}));
    // One pool thread: single-threaded BLAS as with help, and no helper.
    weft::ComputeOptions one(weft::scheduler::threads);
    one.num_workers = 1;
    const wa::NDArray alone = product.compute(one);
    // The sync scheduler's BLAS is single-threaded too: the same bits.
    const wa::NDArray sync = product.compute(weft::scheduler::sync);
    CHECK(std::memcmp(sync.raw_data(), alone.raw_data(), alone.nbytes()) == 0);
    const std::vector<wa::NDArray> want = weft::test::numpy("out = [a @ b]", {{"a", a}, {"b", b}});
    weft::test::check_close(alone, want.at(0), dtype == wa::DType::int64 ? 0 : 1e-10, 1e-12, true, "a @ b");
    weft::ComputeStats stats;
    weft::ComputeOptions o(weft::scheduler::threads);
    o.num_workers = 2;
    o.stats = &stats;
    // Whether the helper gets a core in time is up to the OS (a loaded
    // machine may keep it waiting): try until it did, for up to a minute.
    std::size_t helped = 0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (helped == 0 && std::chrono::steady_clock::now() < give_up) {
      const wa::NDArray with_help = product.compute(o);
      REQUIRE(with_help.nbytes() == alone.nbytes());
      CHECK(std::memcmp(with_help.raw_data(), alone.raw_data(), alone.nbytes()) == 0);
      helped = stats.parts_helped;
    }
    CHECK(helped > 0);
  }
}

TEST_CASE("linalg errors come before any task exists", "[array-linalg]") {
  const auto arr = [](wa::Shape shape) {
    wa::Chunks chunks;
    for (std::int64_t n : shape) chunks.push_back({n});
    return chunked(sample(wa::DType::float64, shape), chunks);
  };
  const wa::Array m34 = arr({3, 4}), m52 = arr({5, 2}), s = arr({}), v5 = arr({5});
  const wa::Array x = arr({3, 4, 5}), y = arr({4, 5, 2}), b345 = arr({2, 3, 4}), b345b = arr({3, 4, 5});
  CHECK_THROWS_WITH(wa::matmul(m34, m52), Contains("[weft.value.shape-mismatch] matmul"));
  CHECK_THROWS_WITH(wa::matmul(s, m34), Contains("[weft.value.bad-ndim] matmul"));
  CHECK_THROWS_WITH(wa::matmul(b345, b345b), Contains("[weft.value.shape-mismatch]"));
  CHECK_THROWS_WITH(wa::dot(m34, v5), Contains("[weft.value.shape-mismatch] dot"));
  CHECK_THROWS_WITH(wa::tensordot(x, y, 3), Contains("[weft.value.shape-mismatch] tensordot"));
  CHECK_THROWS_WITH(wa::tensordot(x, y, 4), Contains("[weft.value.bad-axis] tensordot"));
  CHECK_THROWS_WITH(wa::tensordot(x, y, -1), Contains("[weft.value.bad-axis]"));
  CHECK_THROWS_WITH(wa::tensordot(x, y, {1, 1}, {0, 1}), Contains("given twice"));
  CHECK_THROWS_WITH(wa::tensordot(x, y, {1}, {0, 1}), Contains("[weft.value.bad-axis]"));
  CHECK_THROWS_WITH(wa::tensordot(x, y, {3}, {0}), Contains("out of bounds"));
  CHECK_THROWS_WITH(wa::outer(m34, v5), Contains("[weft.value.bad-ndim] outer"));
  CHECK_THROWS_WITH(wa::vdot(m34, m52), Contains("[weft.value.shape-mismatch] vdot"));
}
