// Shape operations against NumPy: reshape, ravel, transpose and friends,
// squeeze, expand_dims, concatenate, stack, atleast_nd; and their errors
// before any task exists.
#include <catch2/catch.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "array/numpy_oracle.hpp"
#include "array/block_inputs.hpp"
#include "weft/array/creation.hpp"
#include "weft/array/rechunk.hpp"
#include "weft/array/shape.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
using weft::test::test_schedulers;
using weft::test::signed_ramp;
using weft::test::untouchable;
using weft::test::check_close;

namespace {

// Computes each result on each of test_schedulers() and compares it with
// NumPy's `out[i]` (the code sees the inputs by name).
void check_numpy(const std::vector<wa::Array>& results, const std::string& code, const weft::test::NumpyInputs& inputs) {
  const std::vector<wa::NDArray> want = weft::test::numpy(code, inputs);
  REQUIRE(want.size() == results.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    // Chunks always add up to the shape.
    REQUIRE(results[i].chunks().size() == results[i].shape().size());
    for (std::size_t a = 0; a < results[i].chunks().size(); ++a) {
      std::int64_t total = 0;
      for (std::int64_t c : results[i].chunks()[a]) total += c;
      CHECK(total == results[i].shape()[a]);
    }
    for (const auto& scheduler : test_schedulers())
      check_close(results[i].compute(scheduler), want[i], 0.0, 0.0, true, "result " + std::to_string(i));
  }
}

void check_error(const std::function<void()>& call, const std::string& id, const std::string& op) {
  try {
    call();
    FAIL("no error; expected " << id);
  } catch (const weft::Error& e) {
    CHECK(e.id() == id);
    CHECK_THAT(e.what(), Catch::Matchers::Contains(op));
  }
}

}  // namespace

TEST_CASE("reshape matches NumPy and moves blocks as dask's reshape_rechunk", "[array-shape]") {
  struct Case {
    wa::Shape from;
    wa::Chunks chunks;
    wa::Shape to;
    wa::Chunks want;  // the result's chunks
  };
  const Case cases[] = {
      {{4, 6}, {{1, 3}, {2, 2, 2}}, {24}, {{6, 6, 6, 6}}},
      {{4, 6}, {{1, 3}, {2, 2, 2}}, {6, 4}, {{3, 3}, {4}}},
      {{4, 6}, {{1, 3}, {2, 2, 2}}, {2, 2, 6}, {{2}, {2}, {2, 2, 2}}},
      {{4, 6}, {{1, 3}, {2, 2, 2}}, {4, 2, 3}, {{1, 3}, {1, 1}, {3}}},
      {{4, 6}, {{1, 3}, {2, 2, 2}}, {-1, 3}, {{2, 2, 2, 2}, {3}}},
      {{4, 6}, {{1, 3}, {2, 2, 2}}, {1, 24, 1}, {{1}, {6, 6, 6, 6}, {1}}},
      {{4, 4, 4}, {{2, 2}, {2, 2}, {2, 2}}, {64}, {{16, 16, 16, 16}}},
      {{4, 4, 4}, {{2, 2}, {2, 2}, {2, 2}}, {16, 4}, {{4, 4, 4, 4}, {2, 2}}},
      {{64}, {{16, 16, 16, 16}}, {4, 4, 4}, {{1, 1, 1, 1}, {4}, {4}}},
      {{64}, {{10, 10, 10, 34}}, {8, 8}, {{1, 1, 1, 5}, {8}}},
      {{6, 4}, {{2, 2, 2}, {2, 2}}, {4, 6}, {{2, 2}, {6}}},
      {{2, 3, 4}, {{1, 1}, {1, 1, 1}, {2, 2}}, {6, 4}, {{1, 1, 1, 1, 1, 1}, {2, 2}}},
      {{2, 3, 4}, {{1, 1}, {3}, {2, 2}}, {3, 8}, {{3}, {8}}},
      {{1, 5, 1}, {{1}, {2, 3}, {1}}, {5}, {{2, 3}}},
      {{5}, {{2, 3}}, {1, 5, 1}, {{1}, {2, 3}, {1}}},
      {{0, 4}, {{0}, {2, 2}}, {2, 0, 2}, {{2}, {0}, {2}}},
      {{0, 4}, {{0}, {2, 2}}, {-1}, {{0}}},
      {{}, {}, {1, 1}, {{1}, {1}}},
      {{1}, {{1}}, {}, {}},
      {{3, 4}, {{3}, {4}}, {2, 6}, {{2}, {6}}},
  };
  const wa::DType dtypes[] = {wa::DType::float64, wa::DType::int32, wa::DType::bool_};
  std::vector<wa::Array> results;
  weft::test::NumpyInputs inputs;
  std::string code = "out = [";
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    const std::string name = "x" + std::to_string(i);
    const wa::NDArray input = signed_ramp(c.from, dtypes[i % std::size(dtypes)]);
    inputs.emplace_back(name, input);
    const wa::Array y = wa::reshape(wa::from_array(input, c.chunks), c.to);
    INFO("case " << i << ": " << wa::shape_str(c.from) << " -> " << wa::shape_str(c.to));
    CHECK(y.chunks() == c.want);
    results.push_back(y);
    code += name + ".reshape(" + wa::shape_str(c.to) + "), ";
  }
  const wa::Array x = wa::from_array(signed_ramp({3, 4}, wa::DType::complex128), {2, 3});
  inputs.emplace_back("c", x.compute(weft::scheduler::sync));
  results.push_back(wa::ravel(x));
  results.push_back(x.ravel());
  results.push_back(x.reshape({4, -1}));
  check_numpy(results, code + "c.ravel(), c.ravel(), c.reshape(4, -1)]", inputs);
  CHECK(wa::reshape(x, {3, 4}).name() == x.name());
}

TEST_CASE("transpose, moveaxis and swapaxes match NumPy and keep blocks", "[array-shape]") {
  const wa::NDArray input = signed_ramp({3, 4, 5}, wa::DType::int64);
  const wa::Array x = wa::from_array(input, wa::Chunks{{2, 1}, {1, 3}, {5}});
  const std::vector<wa::Array> results = {
      wa::transpose(x),          x.T(),
      x.transpose({1, 0, 2}),    wa::transpose(x, {2, 0, 1}),
      wa::transpose(x, {-1, 0, 1}), wa::swapaxes(x, 0, 2),
      x.swapaxes(-1, 1),         wa::moveaxis(x, 0, -1),
      wa::moveaxis(x, {0, 1}, {-1, -2}), wa::transpose(wa::transpose(x, {1, 2, 0}), {2, 0, 1}),
  };
  CHECK(results[3].chunks() == wa::Chunks{{5}, {2, 1}, {1, 3}});
  CHECK(results[0].chunks() == wa::Chunks{{5}, {1, 3}, {2, 1}});
  CHECK(wa::transpose(x, {0, 1, 2}).name() == x.name());
  check_numpy(results,
              "out = [x.T, x.T, x.transpose(1, 0, 2), x.transpose(2, 0, 1), x.transpose(-1, 0, 1),"
              " np.swapaxes(x, 0, 2), np.swapaxes(x, -1, 1), np.moveaxis(x, 0, -1),"
              " np.moveaxis(x, [0, 1], [-1, -2]), x]",
              {{"x", input}});

  const wa::NDArray small = signed_ramp({0, 3}, wa::DType::float32);
  const wa::Array empty = wa::from_array(small, wa::Chunks{{0}, {2, 1}});
  const wa::Array scalar = wa::from_array(wa::NDArray::scalar(1.5));
  check_numpy({empty.T(), wa::transpose(scalar)}, "out = [e.T, s.T]",
              {{"e", small}, {"s", wa::NDArray::scalar(1.5)}});
}

TEST_CASE("squeeze, expand_dims and atleast_nd match NumPy", "[array-shape]") {
  const wa::NDArray input = signed_ramp({1, 4, 1, 3}, wa::DType::float32);
  const wa::Array x = wa::from_array(input, wa::Chunks{{1}, {2, 2}, {1}, {1, 2}});
  const wa::NDArray flat = signed_ramp({4, 3}, wa::DType::uint8);
  const wa::Array y = wa::from_array(flat, wa::Chunks{{3, 1}, {2, 1}});
  const wa::NDArray line = signed_ramp({5}, wa::DType::int8);
  const wa::Array v = wa::from_array(line, 2);
  const wa::NDArray cube = signed_ramp({2, 2, 2}, wa::DType::int8);
  const wa::Array w = wa::from_array(cube, 1);
  const wa::Array s = wa::from_array(wa::NDArray::scalar(3.0));
  const std::vector<wa::Array> results = {
      wa::squeeze(x),           x.squeeze(0),         wa::squeeze(x, {0, 2}), x.squeeze(-2),
      wa::expand_dims(y, 0),    wa::expand_dims(y, -1), wa::expand_dims(y, {0, 3}), wa::expand_dims(y, {1, 2}),
      wa::atleast_1d(s),        wa::atleast_2d(s),    wa::atleast_3d(s),
      wa::atleast_1d(v),        wa::atleast_2d(v),    wa::atleast_3d(v),
      wa::atleast_2d(y),        wa::atleast_3d(y),    wa::atleast_3d(w),
      // A length-1 axis of two blocks, one empty.
      wa::squeeze(wa::from_array(input, wa::Chunks{{1, 0}, {2, 2}, {1}, {1, 2}})),
  };
  CHECK(results[4].chunks() == wa::Chunks{{1}, {3, 1}, {2, 1}});
  CHECK(wa::squeeze(y).name() == y.name());
  CHECK(wa::atleast_2d(y).name() == y.name());
  check_numpy(results,
              "out = [np.squeeze(x), x.squeeze(0), x.squeeze((0, 2)), x.squeeze(-2),"
              " np.expand_dims(y, 0), np.expand_dims(y, -1), np.expand_dims(y, (0, 3)), np.expand_dims(y, (1, 2)),"
              " np.atleast_1d(s), np.atleast_2d(s), np.atleast_3d(s),"
              " np.atleast_1d(v), np.atleast_2d(v), np.atleast_3d(v),"
              " np.atleast_2d(y), np.atleast_3d(y), np.atleast_3d(w), np.squeeze(x)]",
              {{"x", input}, {"y", flat}, {"v", line}, {"w", cube}, {"s", wa::NDArray::scalar(3.0)}});
}

TEST_CASE("concatenate and stack match NumPy, promoting dtypes", "[array-shape]") {
  const wa::NDArray a_in = signed_ramp({3, 4}, wa::DType::int32);
  const wa::NDArray b_in = signed_ramp({2, 4}, wa::DType::float32);
  const wa::NDArray c_in = signed_ramp({0, 4}, wa::DType::int8);
  const wa::NDArray d_in = signed_ramp({3, 4}, wa::DType::bool_);
  const wa::NDArray e_in = signed_ramp({3, 4}, wa::DType::uint8);
  const wa::Array a = wa::from_array(a_in, wa::Chunks{{2, 1}, {2, 2}});
  const wa::Array b = wa::from_array(b_in, wa::Chunks{{1, 1}, {3, 1}});
  const wa::Array c = wa::from_array(c_in, wa::Chunks{{0}, {4}});
  const wa::Array d = wa::from_array(d_in, 1);
  const wa::Array e = wa::from_array(e_in, wa::Chunks{{3}, {4}});

  const wa::Array abc = wa::concatenate({a, b, c}, 0);
  CHECK(abc.dtype() == wa::DType::float64);
  // Blocks along the axis are kept; off it, all inputs get the blocks between
  // all their boundaries.
  CHECK(abc.chunks() == wa::Chunks{{2, 1, 1, 1, 0}, {2, 1, 1}});
  const std::vector<wa::Array> results = {
      abc,
      wa::concatenate({a, d, e}, 1),
      wa::concatenate({d, e}, -2),
      wa::concatenate({a}, 0),
      wa::stack({a, d, e}, 0),
      wa::stack({a, d}, 1),
      wa::stack({d, e}, -1),
  };
  CHECK(results[4].chunks() == wa::Chunks{{1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1}});
  check_numpy(results,
              "out = [np.concatenate([a, b, c], 0), np.concatenate([a, d, e], 1), np.concatenate([d, e], -2),"
              " np.concatenate([a], 0), np.stack([a, d, e], 0), np.stack([a, d], 1), np.stack([d, e], -1)]",
              {{"a", a_in}, {"b", b_in}, {"c", c_in}, {"d", d_in}, {"e", e_in}});
}

TEST_CASE("shape operations check their arguments before any task", "[array-shape]") {
  const wa::Array x = untouchable({4, 6}, {{1, 3}, {2, 2, 2}});
  const wa::Array y = untouchable({4, 5}, {{4}, {5}});
  const wa::Array s = untouchable({}, {});
  const wa::Array unknown = untouchable({wa::kUnknown, 2}, {{wa::kUnknown}, {2}});

  check_error([&] { wa::reshape(x, {5, 5}); }, "value.bad-shape", "reshape");
  check_error([&] { wa::reshape(x, {-1, -1}); }, "value.bad-shape", "reshape");
  check_error([&] { wa::reshape(x, {-2, -12}); }, "value.bad-shape", "reshape");
  check_error([&] { wa::reshape(x, {-1, 5}); }, "value.bad-shape", "reshape");
  check_error([&] { wa::reshape(unknown, {-1}); }, "value.unknown-chunks", "reshape");

  check_error([&] { wa::transpose(x, {0}); }, "value.bad-axis", "transpose");
  check_error([&] { wa::transpose(x, {1, 1}); }, "value.bad-axis", "transpose");
  check_error([&] { wa::transpose(x, {0, 2}); }, "value.bad-axis", "transpose");
  check_error([&] { wa::swapaxes(x, 0, 2); }, "value.bad-axis", "swapaxes");
  check_error([&] { wa::moveaxis(x, {0, 1}, {1}); }, "value.bad-axis", "moveaxis");
  check_error([&] { wa::moveaxis(x, {0, 0}, {0, 1}); }, "value.bad-axis", "moveaxis");

  check_error([&] { wa::squeeze(x, 0); }, "value.bad-axis", "squeeze");
  check_error([&] { wa::squeeze(x, 2); }, "value.bad-axis", "squeeze");
  check_error([&] { wa::expand_dims(x, 3); }, "value.bad-axis", "expand_dims");
  check_error([&] { wa::expand_dims(x, {1, 1}); }, "value.bad-axis", "expand_dims");

  check_error([&] { wa::concatenate({}, 0); }, "value.no-arrays", "concatenate");
  check_error([&] { wa::concatenate({x, y}, 0); }, "value.shape-mismatch", "concatenate");
  check_error([&] { wa::concatenate({x, s}, 0); }, "value.shape-mismatch", "concatenate");
  check_error([&] { wa::concatenate({s, s}, 0); }, "value.bad-axis", "concatenate");
  check_error([&] { wa::concatenate({x, x}, 2); }, "value.bad-axis", "concatenate");
  check_error([&] { wa::concatenate({unknown, unknown}, 1); }, "value.unknown-chunks", "concatenate");
  check_error([&] { wa::stack({x, y}, 0); }, "value.shape-mismatch", "stack");
  check_error([&] { wa::stack({x, x}, 3); }, "value.bad-axis", "stack");
  check_error([&] { wa::stack({}, 0); }, "value.no-arrays", "stack");

  // Concatenating along the unknown axis is fine: the blocks are kept.
  const wa::Array joined = wa::concatenate({unknown, unknown}, 0);
  CHECK(joined.shape() == wa::Shape{wa::kUnknown, 2});
  CHECK(joined.chunks() == wa::Chunks{{wa::kUnknown, wa::kUnknown}, {2}});
}

TEST_CASE("rechunk and shape tasks travel to other ranks and run the same there", "[array-shape]") {
  const wa::Array x = wa::from_array(signed_ramp({6, 4}, wa::DType::int32), wa::Chunks{{4, 2}, {3, 1}});
  const wa::Array f = wa::from_array(signed_ramp({1, 4}, wa::DType::float32), 2);
  const std::vector<wa::Array> arrays = {
      wa::rechunk(x, wa::Chunks{{1, 5}, {4}}),  // pieces merged
      wa::rechunk(x, {2, 1}),                   // regions of blocks
      wa::transpose(x),
      wa::reshape(x, {4, 6}),
      wa::squeeze(wa::expand_dims(x, 0), 0),
      wa::concatenate({x, f}, 0),               // converted blocks
  };
  // Every task's result, computed from the originals.
  std::unordered_map<weft::Key, weft::Value> results;
  std::function<const weft::Value&(const weft::TaskPtr&)> result_of = [&](const weft::TaskPtr& task) -> const weft::Value& {
    if (auto it = results.find(task->key()); it != results.end()) return it->second;
    std::vector<const weft::Value*> inputs;
    for (const weft::TaskRef& dep : task->dependencies()) inputs.push_back(&result_of(dep.task));
    return results.emplace(task->key(), task->run(inputs)).first->second;
  };
  std::size_t checked = 0;
  for (const wa::Array& a : arrays) {
    const weft::Graph g = a.graph();
    for (const weft::Key& key : g.keys()) {
      const weft::TaskPtr& task = g.at(key);
      std::vector<std::byte> bytes;
      weft::detail::encode_task(*task, bytes);
      std::span<const std::byte> in = bytes;
      const weft::TaskPtr back = weft::detail::decode_task(in);
      REQUIRE(back->dependencies().size() == task->dependencies().size());
      std::vector<const weft::Value*> inputs;
      for (const weft::TaskRef& dep : task->dependencies()) inputs.push_back(&result_of(dep.task));
      INFO(key.str());
      CHECK(back->run(inputs).get<wa::NDArray>().equals(result_of(task).get<wa::NDArray>()));
      ++checked;
    }
  }
  CHECK(checked > 50);
}
