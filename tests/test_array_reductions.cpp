// Reductions, scans, average and histogram against NumPy: every function
// over axis None/int/negative/tuple, keepdims, dtype, split_every 2 and
// large, odd chunkings (uneven, size-1, empty, 0-d), on each of
// test_schedulers(); and the errors raised before any task exists.
#include <catch2/catch.hpp>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "array/block_inputs.hpp"
#include "array/numpy_oracle.hpp"
#include "weft/array/creation.hpp"
#include "weft/array/elementwise.hpp"
#include "weft/array/shape.hpp"
#include "weft/array/reductions.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
using Catch::Matchers::Contains;

namespace {

// One weft result and the NumPy expression it must equal.
struct Expect {
  std::string numpy;
  wa::Array got;
  double rtol = 1e-12;
};

// Evaluates all expressions in one Python call and compares every result on
// each of test_schedulers().
void check_all(const std::vector<Expect>& cases, const weft::test::NumpyInputs& inputs) {
  std::string code = "out = [\n";
  for (const Expect& c : cases) code += "  " + c.numpy + ",\n";
  code += "]";
  const std::vector<wa::NDArray> want = weft::test::numpy(code, inputs);
  REQUIRE(want.size() == cases.size());
  for (auto scheduler : weft::test::test_schedulers()) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      INFO(cases[i].numpy);
      wa::NDArray got = cases[i].got.compute(scheduler);
      // The oracle hands NumPy's 0-d results back as shape (1,) (its
      // np.ascontiguousarray makes them 1-d): compare those as 0-d.
      const bool zero_d = got.ndim() == 0 && want[i].shape() == wa::Shape{1};
      weft::test::check_close(zero_d ? got.reshape({1}) : got, want[i], cases[i].rtol, 1e-300, true, cases[i].numpy);
    }
  }
}

wa::NDArray random_array(wa::DType dtype, const wa::Shape& shape, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> real(0.25, 1.75);
  std::uniform_int_distribution<int> small(-9, 9);
  std::vector<double> re(static_cast<std::size_t>(wa::shape_size(shape)));
  std::vector<double> im(re.size());
  for (std::size_t i = 0; i < re.size(); ++i) {
    if (wa::is_inexact(dtype)) {
      re[i] = real(gen);
      im[i] = real(gen);
    } else {
      re[i] = dtype == wa::DType::bool_ ? small(gen) > 0 : wa::dtype_kind(dtype) == wa::DTypeKind::unsigned_integer
                                                              ? small(gen) + 9
                                                              : small(gen);
    }
  }
  wa::NDArray out;
  if (wa::is_complex(dtype)) {
    std::vector<std::complex<double>> c(re.size());
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = {re[i], im[i]};
    out = wa::NDArray::from(c, shape);
  } else {
    out = wa::NDArray::from(re, shape);
  }
  return out.astype(dtype);
}

// A Python axis argument.
std::string py(const wa::Axes& axis) {
  if (axis.all()) return "None";
  if (axis.list().size() == 1 && !axis.list().empty()) return std::to_string(axis.list()[0]);
  std::string s = "(";
  for (int a : axis.list()) s += std::to_string(a) + ",";
  return s + ")";
}

using AxesReduction = std::function<wa::Array(const wa::Array&, wa::Axes, const wa::ReduceOptions&)>;

struct Named {
  std::string numpy;  // the numpy function, called as numpy(x, axis=..., keepdims=...)
  AxesReduction weft;
};

std::vector<Named> plain_reductions() {
  return {
      {"np.sum", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::sum(x, a, o); }},
      {"np.prod", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::prod(x, a, o); }},
      {"np.mean", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::mean(x, a, o); }},
      {"np.min", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::min(x, a, o); }},
      {"np.max", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::max(x, a, o); }},
      {"np.any", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::any(x, a, o); }},
      {"np.all", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::all(x, a, o); }},
      {"np.count_nonzero",
       [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::count_nonzero(x, a, o); }},
      {"np.var", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::var(x, a, 0, o); }},
      {"(lambda x, axis, keepdims: np.std(x, axis=axis, ddof=1, keepdims=keepdims))",
       [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::std(x, a, 1, o); }},
      {"(lambda x, axis, keepdims: np.mean((x - x.mean(axis=axis, keepdims=True))**3, axis=axis, "
       "keepdims=keepdims))",
       [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::moment(x, 3, a, 0, o); }},
  };
}

std::vector<Named> nan_reductions() {
  return {
      {"np.nansum", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::nansum(x, a, o); }},
      {"np.nanprod", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::nanprod(x, a, o); }},
      {"np.nanmean", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::nanmean(x, a, o); }},
      {"np.nanmin", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::nanmin(x, a, o); }},
      {"np.nanmax", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::nanmax(x, a, o); }},
      {"(lambda x, axis, keepdims: np.nanvar(x, axis=axis, ddof=1, keepdims=keepdims))",
       [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::nanvar(x, a, 1, o); }},
      {"np.nanstd", [](const wa::Array& x, wa::Axes a, const wa::ReduceOptions& o) { return wa::nanstd(x, a, 0, o); }},
  };
}

std::vector<wa::Axes> axes_2d() { return {wa::Axes(), wa::Axes(0), wa::Axes(1), wa::Axes({0, 1}), wa::Axes(-1)}; }

// Every function x every axis x keepdims, as one batch.
void add_all(std::vector<Expect>& out, const std::vector<Named>& functions, const wa::Array& x,
             const std::vector<wa::Axes>& axes, std::optional<int> split_every, double rtol) {
  for (const Named& f : functions)
    for (const wa::Axes& axis : axes)
      for (bool keepdims : {false, true}) {
        wa::ReduceOptions options;
        options.keepdims = keepdims;
        options.split_every = split_every;
        out.push_back({f.numpy + "(x, axis=" + py(axis) + ", keepdims=" + (keepdims ? "True" : "False") + ")",
                       f.weft(x, axis, options), rtol});
      }
}

void add_args(std::vector<Expect>& out, const wa::Array& x, bool nan) {
  using ArgFn = wa::Array (*)(const wa::Array&, std::optional<int>, const wa::ReduceOptions&);
  const std::vector<std::pair<std::string, ArgFn>> fns =
      nan ? std::vector<std::pair<std::string, ArgFn>>{{"np.nanargmin", &wa::nanargmin}, {"np.nanargmax", &wa::nanargmax}}
          : std::vector<std::pair<std::string, ArgFn>>{{"np.argmin", &wa::argmin}, {"np.argmax", &wa::argmax}};
  for (const auto& [name, fn] : fns)
    for (std::optional<int> axis : {std::optional<int>(), std::optional<int>(0), std::optional<int>(1),
                                    std::optional<int>(-1)})
      out.push_back({name + "(x, axis=" + (axis ? std::to_string(*axis) : "None") + ")", fn(x, axis, {})});
}

const std::vector<wa::Chunks> kChunkings2d = {
    {{3, 3, 1}, {2, 2, 1}},       // uneven last blocks
    {{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}},  // size-1 blocks
    {{7}, {5}},                   // one block
    {{2, 0, 5}, {5}},             // an empty block in the middle
};

}  // namespace

TEST_CASE("reductions of float64 match NumPy for every axis, keepdims and chunking", "[array-reductions]") {
  const wa::NDArray data = random_array(wa::DType::float64, {7, 5}, 1);
  for (const wa::Chunks& chunks : kChunkings2d) {
    for (std::optional<int> split_every : {std::optional<int>(2), std::optional<int>(100)}) {
      INFO("chunks " << wa::chunks_str(chunks) << " split_every " << *split_every);
      const wa::Array x = wa::from_array(data, chunks);
      std::vector<Expect> cases;
      add_all(cases, plain_reductions(), x, axes_2d(), split_every, 1e-12);
      add_all(cases, {{"np.ptp", [](const wa::Array& a, wa::Axes ax, const wa::ReduceOptions& o) {
                         return wa::ptp(a, ax, o);
                       }}},
              x, axes_2d(), split_every, 1e-12);
      add_args(cases, x, false);
      check_all(cases, {{"x", data}});
    }
  }
}

TEST_CASE("nan reductions skip NaNs; all-NaN slices give NaN", "[array-reductions]") {
  wa::NDArray data = random_array(wa::DType::float64, {6, 4}, 2);
  double* p = data.data<double>();
  for (int i = 0; i < 6; ++i) p[i * 4 + 1] = std::nan("");  // column 1 all NaN
  p[0] = p[7] = p[4 * 4 + 3] = std::nan("");
  const wa::Array x = wa::from_array(data, wa::Chunks{{4, 2}, {3, 1}});
  std::vector<Expect> cases;
  add_all(cases, nan_reductions(), x, axes_2d(), 2, 1e-12);
  // The plain ones propagate NaN.
  add_all(cases, {plain_reductions()[0], plain_reductions()[3], plain_reductions()[8]}, x, {wa::Axes(0)}, 3, 1e-12);
  cases.push_back({"np.argmin(x, axis=0)", wa::argmin(x, 0)});
  cases.push_back({"np.argmax(x)", wa::argmax(x)});
  // nanarg*: NaNs skipped where a slice has numbers.
  cases.push_back({"np.nanargmin(x)", wa::nanargmin(x)});
  cases.push_back({"np.nanargmax(x, axis=1)", wa::nanargmax(x, 1)});
  check_all(cases, {{"x", data}});
  CHECK_THROWS_WITH(wa::nanargmin(x, 0).compute(weft::scheduler::sync), Contains("value.all-nan-slice"));
}

TEST_CASE("reduction dtypes follow NumPy for ints, bool, float32 and complex", "[array-reductions]") {
  const std::vector<std::pair<wa::DType, std::uint64_t>> types = {
      {wa::DType::int8, 3},      {wa::DType::int32, 4},     {wa::DType::int64, 5},   {wa::DType::uint8, 6},
      {wa::DType::uint32, 7},    {wa::DType::bool_, 8},     {wa::DType::float32, 9}, {wa::DType::complex128, 10},
      {wa::DType::complex64, 11}};
  for (const auto& [dtype, seed] : types) {
    INFO("dtype " << wa::dtype_name(dtype));
    const wa::NDArray data = random_array(dtype, {5, 6}, seed);
    const wa::Array x = wa::from_array(data, wa::Chunks{{2, 2, 1}, {4, 2}});
    const bool single = dtype == wa::DType::float32 || dtype == wa::DType::complex64;
    const double rtol = single ? 1e-5 : 1e-12;
    std::vector<Expect> cases;
    std::vector<Named> fns = plain_reductions();
    fns.pop_back();  // moment: real only, below
    add_all(cases, fns, x, {wa::Axes(), wa::Axes(0), wa::Axes(-1)}, 2, rtol);
    add_all(cases, nan_reductions(), x, {wa::Axes(), wa::Axes(1)}, 3, rtol);
    if (!wa::is_complex(dtype)) {
      add_args(cases, x, false);
      cases.push_back({"np.mean((x - x.mean(axis=0, keepdims=True))**4, axis=0)", wa::moment(x, 4, 0), rtol});
    }
    if (dtype != wa::DType::bool_)
      cases.push_back({"np.ptp(x, axis=1)", wa::ptp(x, 1)});
    cases.push_back({"np.cumsum(x, axis=0)", wa::cumsum(x, 0), rtol});
    cases.push_back({"np.cumprod(x, axis=1)", wa::cumprod(x, 1), rtol});
    cases.push_back({"np.nancumsum(x)", wa::nancumsum(x), rtol});
    // dtype=: accumulate in another type.
    wa::ReduceOptions as_float;
    as_float.dtype = wa::DType::float64;
    if (!wa::is_complex(dtype)) {
      cases.push_back({"np.sum(x, axis=0, dtype=np.float64)", wa::sum(x, 0, as_float), rtol});
      cases.push_back({"np.mean(x, dtype=np.float64)", wa::mean(x, {}, as_float), rtol});
      cases.push_back({"np.cumsum(x, axis=1, dtype=np.float64)", wa::cumsum(x, 1, wa::DType::float64), rtol});
    }
    check_all(cases, {{"x", data}});
  }
}

TEST_CASE("int8 sums with dtype=int8 wrap around as NumPy's", "[array-reductions]") {
  const wa::NDArray data = wa::NDArray::from<std::int8_t>({100, 100, 100, -100, 27, 1}).reshape({6});
  const wa::Array x = wa::from_array(data, wa::Chunks{{2, 2, 2}});
  wa::ReduceOptions as_int8;
  as_int8.dtype = wa::DType::int8;
  as_int8.split_every = 2;
  check_all({{"np.sum(x, dtype=np.int8)", wa::sum(x, {}, as_int8)},
             {"np.sum(x)", wa::sum(x)},
             {"np.cumsum(x, dtype=np.int8)", wa::cumsum(x, {}, wa::DType::int8)}},
            {{"x", data}});
}

TEST_CASE("results do not depend on chunking or split_every beyond rounding", "[array-reductions]") {
  const wa::NDArray data = random_array(wa::DType::float64, {300, 40}, 12);
  // Values near 1, so that long products stay finite.
  wa::NDArray scaled = data.copy();
  for (std::int64_t i = 0; i < scaled.size(); ++i) scaled.data<double>()[i] = 0.6 + scaled.data<double>()[i] / 3.75;
  std::vector<Expect> cases;
  for (const wa::ChunkSpec& chunks : {wa::ChunkSpec(7), wa::ChunkSpec({300, 40}), wa::ChunkSpec({13, 1})}) {
    const wa::Array x = wa::from_array(data, chunks);
    for (int split : {2, 3, 64}) {
      wa::ReduceOptions o;
      o.split_every = split;
      cases.push_back({"np.sum(x)", wa::sum(x, {}, o)});
      cases.push_back({"np.mean(x, axis=0)", wa::mean(x, 0, o)});
      cases.push_back({"np.var(x, axis=1)", wa::var(x, 1, 0, o)});
      cases.push_back({"np.std(x)", wa::std(x, {}, 0, o)});
      cases.push_back({"np.mean((x - x.mean())**5)", wa::moment(x, 5, {}, 0, o), 1e-9});
      cases.push_back({"np.argmax(x)", wa::argmax(x, std::nullopt, o)});
    }
    cases.push_back({"np.cumsum(x, axis=0)", wa::cumsum(x, 0)});
    cases.push_back({"np.cumprod(s, axis=0)", wa::cumprod(wa::from_array(scaled, chunks), 0), 1e-10});
  }
  check_all(cases, {{"x", data}, {"s", scaled}});
}

TEST_CASE("empty and 0-d reductions", "[array-reductions]") {
  const wa::NDArray empty(wa::DType::float64, {0, 3});
  const wa::Array e = wa::from_array(empty, wa::Chunks{{0}, {2, 1}});
  const wa::NDArray scalar = wa::NDArray::scalar(2.5);
  const wa::Array s = wa::from_array(scalar, wa::Chunks{});
  check_all({{"np.sum(e, axis=0)", wa::sum(e, 0)},
             {"np.sum(e)", wa::sum(e)},
             {"np.prod(e, axis=0)", wa::prod(e, 0)},
             {"np.mean(e, axis=0)", wa::mean(e, 0)},
             {"np.var(e)", wa::var(e)},
             {"np.min(e, axis=1)", wa::min(e, 1)},
             {"np.argmax(e, axis=1)", wa::argmax(e, 1)},
             {"np.any(e, axis=0)", wa::any(e, 0)},
             {"np.all(e)", wa::all(e)},
             {"np.cumsum(e, axis=0)", wa::cumsum(e, 0)},
             {"np.sum(s)", wa::sum(s)},
             {"np.mean(s, keepdims=True)", wa::mean(s, {}, {true, {}, {}})},
             {"np.min(s)", wa::min(s)},
             {"np.argmin(s)", wa::argmin(s)},
             {"np.cumsum(s)", wa::cumsum(s)}},
            {{"e", empty}, {"s", scalar}});
}

TEST_CASE("reduction errors are raised before any task exists", "[array-reductions]") {
  const wa::Array x = wa::from_array(random_array(wa::DType::float64, {4, 3}, 13), 2);
  const wa::Array e = wa::from_array(wa::NDArray(wa::DType::float64, {0, 3}), 2);
  CHECK_THROWS_WITH(wa::sum(x, 2), Contains("value.bad-axis"));
  CHECK_THROWS_WITH(wa::mean(x, -3), Contains("value.bad-axis"));
  CHECK_THROWS_WITH(wa::var(x, {0, 0}), Contains("value.bad-axis"));
  CHECK_THROWS_WITH(wa::argmin(x, 2), Contains("value.bad-axis"));
  CHECK_THROWS_WITH(wa::cumsum(x, 5), Contains("value.bad-axis"));
  CHECK_THROWS_WITH(wa::min(e, 0), Contains("value.empty-reduction"));
  CHECK_THROWS_WITH(wa::max(e), Contains("value.empty-reduction"));
  CHECK_THROWS_WITH(wa::argmax(e), Contains("value.empty-reduction"));
  CHECK_THROWS_WITH(wa::ptp(e, {0, 1}), Contains("value.empty-reduction"));
  CHECK_THROWS_WITH(wa::sum(x, {}, {false, {}, 1}), Contains("value.bad-split-every"));
  CHECK_THROWS_WITH(wa::moment(x, -1), Contains("value.bad-order"));
  CHECK_THROWS_WITH(wa::ptp(wa::from_array(wa::NDArray::from<bool>({true, false}), 1)), Contains("type.bad-dtype"));
  CHECK_THROWS_WITH(wa::argmin(x, 0, {false, wa::DType::int32, {}}), Contains("type.bad-dtype"));
  CHECK_THROWS_WITH(wa::histogram(x, 0, {0.0, 1.0}), Contains("value.bad-bins"));
  CHECK_THROWS_WITH(wa::histogram(x, std::vector<double>{1.0, 0.5}), Contains("value.bad-bins"));
  CHECK_THROWS_WITH(wa::average(x, 0, wa::from_array(random_array(wa::DType::float64, {3}, 1), 3)),
                    Contains("value.shape-mismatch"));
}

TEST_CASE("cumsum and cumprod carry totals across blocks", "[array-reductions]") {
  wa::NDArray data = random_array(wa::DType::float64, {5, 7}, 14);
  data.data<double>()[3] = std::nan("");
  data.data<double>()[20] = std::nan("");
  const wa::NDArray ints = random_array(wa::DType::int32, {5, 7}, 15);
  std::vector<Expect> cases;
  for (const wa::Chunks& chunks : {wa::Chunks{{2, 2, 1}, {3, 3, 1}}, wa::Chunks{{1, 1, 1, 1, 1}, {7}},
                                   wa::Chunks{{5}, {1, 1, 1, 1, 1, 1, 1}}}) {
    const wa::Array x = wa::from_array(data, chunks);
    const wa::Array n = wa::from_array(ints, chunks);
    for (std::optional<int> axis : {std::optional<int>(), std::optional<int>(0), std::optional<int>(1),
                                    std::optional<int>(-1)}) {
      const std::string a = axis ? std::to_string(*axis) : "None";
      cases.push_back({"np.nancumsum(x, axis=" + a + ")", wa::nancumsum(x, axis)});
      cases.push_back({"np.nancumprod(x, axis=" + a + ")", wa::nancumprod(x, axis)});
      cases.push_back({"np.cumsum(x, axis=" + a + ")", wa::cumsum(x, axis)});
      cases.push_back({"np.cumsum(n, axis=" + a + ")", n.cumsum(axis)});
      cases.push_back({"np.cumprod(n, axis=" + a + ")", n.cumprod(axis)});
    }
  }
  check_all(cases, {{"x", data}, {"n", ints}});
}

TEST_CASE("average with and without weights matches np.average", "[array-reductions]") {
  const wa::NDArray data = random_array(wa::DType::float64, {6, 4}, 16);
  const wa::NDArray ints = random_array(wa::DType::int16, {6, 4}, 17);
  const wa::NDArray w2 = random_array(wa::DType::float64, {6, 4}, 18);
  const wa::NDArray w1 = random_array(wa::DType::float64, {4}, 19);
  const wa::Array x = wa::from_array(data, wa::Chunks{{4, 2}, {1, 3}});
  const wa::Array n = wa::from_array(ints, wa::Chunks{{4, 2}, {1, 3}});
  const wa::Array weights2 = wa::from_array(w2, 3);       // other chunks: rechunked
  const wa::Array weights1 = wa::from_array(w1, wa::Chunks{{1, 3}});
  const auto [avg, scl] = wa::average_returned(x, 1, weights1);
  const auto [navg, nscl] = wa::average_returned(n, 0);
  check_all({{"np.average(x)", wa::average(x)},
             {"np.average(x, axis=0, weights=w2)", wa::average(x, 0, weights2)},
             {"np.average(x, axis=(0, 1), weights=w2)", wa::average(x, {0, 1}, weights2)},
             {"np.average(n, axis=1, weights=w2)", wa::average(n, 1, weights2)},
             {"np.average(x, axis=1, weights=w1, returned=True)[0]", avg},
             {"np.average(x, axis=1, weights=w1, returned=True)[1]", scl},
             {"np.average(n, axis=0, returned=True)[0]", navg},
             {"np.average(n, axis=0, returned=True)[1]", nscl},
             {"np.average(x, axis=0, weights=w2, keepdims=True)", wa::average(x, 0, weights2, true)}},
            {{"x", data}, {"n", ints}, {"w2", w2}, {"w1", w1}});
}

TEST_CASE("histogram matches np.histogram", "[array-reductions]") {
  wa::NDArray data = random_array(wa::DType::float64, {9, 5}, 20);
  data.data<double>()[0] = 1.0;  // on an edge
  data.data<double>()[1] = 1.75;
  const wa::NDArray w = random_array(wa::DType::float64, {9, 5}, 21);
  const wa::NDArray ints = random_array(wa::DType::int32, {40}, 22);
  const wa::Array x = wa::from_array(data, wa::Chunks{{4, 4, 1}, {2, 3}});
  const wa::Array weights = wa::from_array(w, 3);
  const wa::Array n = wa::from_array(ints, 7);
  const wa::Histogram h = wa::histogram(x, 10, {0.5, 1.5});
  const wa::Histogram hw = wa::histogram(x, 7, {0.0, 2.0}, weights);
  const wa::Histogram hd = wa::histogram(x, std::vector<double>{0.25, 0.5, 1.0, 1.1, 1.75}, std::nullopt, true);
  const wa::Histogram hi = wa::histogram(n, 6, {-9.0, 9.0});
  const wa::Histogram he = wa::histogram(n, std::vector<double>{-3, 0, 1, 5});
  check_all({{"np.histogram(x, bins=10, range=(0.5, 1.5))[0]", h.counts},
             {"np.histogram(x, bins=7, range=(0.0, 2.0), weights=w)[0]", hw.counts},
             {"np.histogram(x, bins=[0.25, 0.5, 1.0, 1.1, 1.75], density=True)[0]", hd.counts},
             {"np.histogram(n, bins=6, range=(-9, 9))[0]", hi.counts},
             {"np.histogram(n, bins=[-3, 0, 1, 5])[0]", he.counts}},
            {{"x", data}, {"w", w}, {"n", ints}});
  const std::vector<wa::NDArray> edges = weft::test::numpy(
      "out = [np.histogram(x, bins=10, range=(0.5, 1.5))[1], np.histogram(x, bins=7, range=(0.0, 2.0))[1]]",
      {{"x", data}});
  weft::test::check_close(h.edges, edges[0], 0, 0);
  weft::test::check_close(hw.edges, edges[1], 0, 0);
}

TEST_CASE("reductions of elementwise expressions evaluate them inside their partials", "[array-reductions]") {
  const wa::NDArray data = random_array(wa::DType::float64, {6, 6}, 23);
  const wa::NDArray ints = random_array(wa::DType::int32, {6, 6}, 24);
  for (const wa::Chunks& chunks : {wa::Chunks{{3, 3}, {3, 3}}, wa::Chunks{{4, 2}, {4, 2}}, wa::Chunks{{6}, {6}}}) {
    INFO("chunks " << wa::chunks_str(chunks));
    const wa::Array x = wa::from_array(data, chunks);
    const wa::Array n = wa::from_array(ints, chunks);
    const wa::Array expr = x + x.T() - x.mean(0);
    const wa::Array scaled = n * 3;
    const wa::Array total = expr.sum();
    // The expression's own blocks are not in the graph: the partials read x.
    const weft::Graph graph = total.graph();
    CHECK(graph.contains(x.block_key(std::vector<std::int64_t>{0, 0})));
    CHECK_FALSE(graph.contains(expr.block_key(std::vector<std::int64_t>{0, 0})));
    check_all({{"(x + x.T - x.mean(0)).sum()", total},
               {"(x + x.T - x.mean(0)).sum(axis=0, keepdims=True)", expr.sum(0, {true, {}, 2})},
               {"(x + x.T - x.mean(0)).mean(axis=1)", expr.mean(1)},
               {"(x + x.T - x.mean(0)).var(axis=0, ddof=1)", expr.var(0, 1)},
               {"np.nanstd(x + x.T - x.mean(0))", wa::nanstd(expr)},
               {"np.ptp(x + x.T - x.mean(0), axis=1)", wa::ptp(expr, 1)},
               {"(x + x.T - x.mean(0)).max(axis=(0, 1))", expr.max({0, 1})},
               {"(x + x.T - x.mean(0)).argmin()", expr.argmin()},
               {"(n * 3).sum(axis=1)", scaled.sum(1)},
               {"(n * 3).prod(axis=0, dtype=np.float64)", scaled.prod(0, {false, wa::DType::float64, {}})},
               {"np.count_nonzero(n * 3 > 6)", wa::count_nonzero(scaled > 6)},
               {"(n * 3 > 6).any(axis=0)", (scaled > 6).any(0)}},
              {{"x", data}, {"n", ints}});
  }
}

TEST_CASE("reduction, scan and histogram tasks travel to other ranks", "[array-reductions]") {
  const wa::NDArray data = random_array(wa::DType::float64, {6, 4}, 25);
  const wa::Array x = wa::from_array(data, 2);
  const std::vector<wa::Array> arrays{wa::sum(x, {}, {false, {}, 2}), wa::var(x, 0), wa::argmin(x),
                                      wa::cumsum(x, 1), wa::average(x, 0, x), wa::histogram(x, 4, {0.0, 2.0}).counts,
                                      wa::mean(x * 2.0 + 1.0, 1)};
  for (const wa::Array& a : arrays) {
    INFO(a.name());
    const weft::Graph graph = a.graph();
    for (const weft::Key& key : graph.keys()) {
      const weft::TaskPtr& task = graph.at(key);
      std::vector<std::byte> bytes;
      weft::detail::encode_task(*task, bytes);
      std::span<const std::byte> in(bytes);
      const weft::TaskPtr decoded = weft::detail::decode_task(in);
      CHECK(decoded->dependencies().size() == task->dependencies().size());
    }
  }
}
