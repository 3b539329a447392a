// normalize_chunks against dask.array.core.normalize_chunks itself (python3-dask):
// one size for all axes, per axis, -1, explicit sizes, "auto" with limits
// and previous chunks (rechunk), empty and 0-d shapes; its errors; the
// block helpers and config array.chunk-size.
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "array/numpy_oracle.hpp"
#include "weft/array/chunks.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace wa = weft::array;
using Catch::Matchers::StartsWith;

namespace {

// One call of normalize_chunks, in C++ and as the Python arguments of dask's.
struct ChunksCase {
  wa::ChunkSpec spec;
  wa::Shape shape;
  wa::DType dtype;
  std::optional<std::size_t> limit;
  std::optional<wa::Chunks> previous;
  std::string python;  // "chunks, shape, dtype=..., limit=..., previous_chunks=..."
};

}  // namespace

TEST_CASE("normalize_chunks gives dask's chunks", "[array-chunks]") {
  using wa::DType;
  const wa::Chunks tens(2, std::vector<std::int64_t>(10, 100));
  const wa::Chunks uneven = {{300, 300, 300, 100}, {7, 7, 7, 7, 7, 7, 7, 1}};
  const std::vector<ChunksCase> cases = {
      {10, {30, 5}, DType::float64, {}, {}, "10, (30, 5), dtype='float64'"},
      {{2, 3}, {5, 6}, DType::float64, {}, {}, "(2, 3), (5, 6), dtype='float64'"},
      {{5, -1}, {10, 10}, DType::int8, {}, {}, "(5, -1), (10, 10), dtype='int8'"},
      {wa::Chunks{{2, 2, 1}, {2, 2, 2}}, {5, 6}, DType::float64, {}, {}, "((2, 2, 1), (2, 2, 2)), (5, 6), dtype='float64'"},
      {{4, 4, 2}, {10}, DType::float64, {}, {}, "(4, 4, 2), (10,), dtype='float64'"},
      {-1, {7, 0}, DType::float64, {}, {}, "-1, (7, 0), dtype='float64'"},
      {4, {0, 9}, DType::float64, {}, {}, "4, (0, 9), dtype='float64'"},
      {std::vector<wa::AxisChunks>{}, {0, 0}, DType::float64, {}, {}, "(), (0, 0), dtype='float64'"},
      {"auto", {}, DType::float64, {}, {}, "'auto', (), dtype='float64'"},
      {"auto", {20}, DType::uint8, 5, {}, "'auto', (20,), dtype='uint8', limit=5"},
      {"auto", {2000}, DType::float32, 1024, {}, "'auto', (2000,), dtype='float32', limit=1024"},
      {"auto", {10000, 10000}, DType::float64, {}, {}, "'auto', (10000, 10000), dtype='float64'"},
      {"auto", {10000, 10000}, DType::complex64, 1000000, {}, "'auto', (10000, 10000), dtype='complex64', limit=1000000"},
      {{"auto", 100}, {10000, 10000}, DType::float64, 1000000, {}, "('auto', 100), (10000, 10000), dtype='float64', limit=1000000"},
      {{-1, "auto"}, {1000, 100000}, DType::float32, 10000000, {}, "(-1, 'auto'), (1000, 100000), dtype='float32', limit=10000000"},
      {"auto", {5, 1000000000}, DType::float64, {}, {}, "'auto', (5, 1000000000), dtype='float64'"},
      {"auto", {100, 200, 300}, DType::int16, 1000000, {}, "'auto', (100, 200, 300), dtype='int16', limit=1000000"},
      {"auto", {0, 10}, DType::float64, {}, {}, "'auto', (0, 10), dtype='float64'"},
      {{wa::AxisChunks(std::vector<std::int64_t>{5, 5}), "auto"}, {10, 1000}, DType::float64, 800, {},
       "((5, 5), 'auto'), (10, 1000), dtype='float64', limit=800"},
      {"auto", {3, 3}, DType::float64, 1, {}, "'auto', (3, 3), dtype='float64', limit=1"},
      // Rechunking: "auto" grows or shrinks previous chunks, keeping multiples.
      {"auto", {1000, 1000}, DType::float64, 320000, tens,
       "'auto', (1000, 1000), dtype='float64', limit=320000, previous_chunks=((100,)*10, (100,)*10)"},
      {"auto", {1000, 1000}, DType::float64, 20000, tens,
       "'auto', (1000, 1000), dtype='float64', limit=20000, previous_chunks=((100,)*10, (100,)*10)"},
      {{"auto", -1}, {1000, 1000}, DType::float64, 1600000, tens,
       "('auto', -1), (1000, 1000), dtype='float64', limit=1600000, previous_chunks=((100,)*10, (100,)*10)"},
      {"auto", {1000, 50}, DType::int32, 100000, uneven,
       "'auto', (1000, 50), dtype='int32', limit=100000, previous_chunks=((300, 300, 300, 100), (7,)*7 + (1,))"},
      {"auto", {1000, 50}, DType::int32, 2000, uneven,
       "'auto', (1000, 50), dtype='int32', limit=2000, previous_chunks=((300, 300, 300, 100), (7,)*7 + (1,))"},
      {{"auto", 10}, {1000, 50}, DType::int32, 30000, uneven,
       "('auto', 10), (1000, 50), dtype='int32', limit=30000, previous_chunks=((300, 300, 300, 100), (7,)*7 + (1,))"},
  };
  std::string code = "from dask.array.core import normalize_chunks\ncases = [\n";
  for (const ChunksCase& c : cases) code += "  normalize_chunks(" + c.python + "),\n";
  code += "]\nout = [np.array(axis, dtype=np.int64) for case in cases for axis in case]";
  const auto want = weft::test::numpy(code);

  std::size_t next = 0;
  for (const ChunksCase& c : cases) {
    INFO("normalize_chunks(" << c.python << ")");
    const wa::Chunks got = wa::normalize_chunks(c.spec, c.shape, c.dtype, c.limit,
                                                c.previous ? &*c.previous : nullptr);
    REQUIRE(got.size() == c.shape.size());
    for (const auto& axis : got) {
      REQUIRE(next < want.size());
      CHECK(axis == want[next++].to_vector<std::int64_t>());
    }
  }
  CHECK(next == want.size());
}

TEST_CASE("normalize_chunks rejects bad chunks", "[array-chunks]") {
  using wa::DType;
  const auto check_bad = [](const wa::ChunkSpec& spec, const wa::Shape& shape, const wa::Chunks* previous = nullptr) {
    CHECK_THROWS_AS(wa::normalize_chunks(spec, shape, DType::float64, std::nullopt, previous), weft::ValueError);
    CHECK_THROWS_WITH(wa::normalize_chunks(spec, shape, DType::float64, std::nullopt, previous),
                      StartsWith("[weft.value.bad-chunks]"));
  };
  check_bad({4, 4}, {10});                     // sizes of a 1-d axis that do not add up
  check_bad(wa::Chunks{{4, 4}, {3}}, {8, 4});  // nor of one of two axes
  check_bad({4, 4, 4}, {8, 8});                // one spec per axis
  check_bad(0, {5});                           // a zero block on a non-empty axis
  check_bad(-2, {5});
  check_bad(wa::Chunks{{3, -2, 9}}, {10});
  check_bad(wa::Chunks{{}}, {0});              // empty sizes: dask wants (0,)
  check_bad(4, {wa::kUnknown});                // an unknown length takes explicit sizes only
  check_bad({wa::AxisChunks(std::vector<std::int64_t>{wa::kUnknown, 3}), "auto"}, {wa::kUnknown, 10});
  const wa::Chunks previous = {{5, 5}};
  check_bad("auto", {10, 10}, &previous);      // previous chunks of another dimension
  CHECK_THROWS_WITH(wa::ChunkSpec("64MiB"), StartsWith("[weft.value.bad-chunks]"));
  CHECK_THROWS_WITH(wa::AxisChunks("whole"), StartsWith("[weft.value.bad-chunks]"));

  // Unknown sizes pass through where they are explicit.
  const wa::Chunks unknown = {{wa::kUnknown, wa::kUnknown}, {3, 3}};
  CHECK(wa::normalize_chunks(unknown, {wa::kUnknown, 6}, DType::int8) == unknown);
}

TEST_CASE("auto chunks follow config array.chunk-size", "[array-chunks]") {
  CHECK(wa::configured_chunk_bytes() == 128u << 20);
  CHECK(wa::normalize_chunks("auto", {100000}, wa::DType::float64) == wa::Chunks{{100000}});
  {
    weft::config::set scope{{"array.chunk-size", "8KiB"}};
    CHECK(wa::configured_chunk_bytes() == 8192);
    const wa::Chunks got = wa::normalize_chunks("auto", {100000}, wa::DType::float64);
    CHECK(got[0].front() == 1024);
    CHECK(got[0].size() == 98);
    // An explicit limit wins over the configuration.
    CHECK(wa::normalize_chunks("auto", {100000}, wa::DType::float64, 80000)[0].front() == 10000);
  }
  CHECK(wa::configured_chunk_bytes() == 128u << 20);
}

TEST_CASE("block helpers: numblocks, offsets, shapes, unknowns, printing", "[array-chunks]") {
  const wa::Chunks c = {{4, 4, 2}, {7}, {0}};
  CHECK(wa::numblocks(c) == std::vector<std::int64_t>{3, 1, 1});
  CHECK(wa::block_offsets(c[0]) == std::vector<std::int64_t>{0, 4, 8, 10});
  CHECK(wa::block_offsets(c[2]) == std::vector<std::int64_t>{0, 0});
  const std::int64_t last[] = {2, 0, 0};
  CHECK(wa::block_shape(c, last) == wa::Shape{2, 7, 0});
  const std::int64_t outside[] = {3, 0, 0};
  CHECK_THROWS_WITH(wa::block_shape(c, outside), StartsWith("[weft.value.bad-index]"));
  const std::int64_t short_index[] = {0};
  CHECK_THROWS_WITH(wa::block_shape(c, short_index), StartsWith("[weft.value.bad-index]"));
  CHECK_FALSE(wa::has_unknown(c));
  CHECK(wa::has_unknown({{4}, {wa::kUnknown, 2}}));
  CHECK(wa::chunks_str(c) == "((4, 4, 2), (7,), (0,))");
  CHECK(wa::chunks_str({{wa::kUnknown, 2}}) == "((nan, 2),)");
  CHECK(wa::chunks_str({}) == "()");
  CHECK(wa::numblocks({}).empty());
}
