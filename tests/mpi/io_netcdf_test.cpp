// NetCDF-4 on the distributed scheduler: every worker writes the blocks it
// holds into one file with nc_create_par (collective access: unfiltered,
// deflated, record variables, a 0-d variable), appends records along time,
// xarray checks what was written against the sync scheduler's elements, and
// the workers read it back. Run by tests/mpi/io_netcdf.sh without a launcher
// and on 1 to 5 ranks.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "../array/numpy_oracle.hpp"
#include "../io/block_functions.hpp"
#include "../io/scratch.hpp"
#include "weft/array.hpp"
#include "weft/io/netcdf.hpp"
#include "weft/weft.hpp"

namespace {

namespace wa = weft::array;
namespace wio = weft::io;
using weft::test::check_close;
using weft::test::numpy;
using weft::test::Scratch;
using weft::test::positional_block;
using weft::test::text_of;

std::string xarray_open(const std::string& path) {
  return "import xarray as xr\nds = xr.open_dataset('" + path + "', decode_times=False)\n";
}

// t(time, lat, lon) of `steps` records (odd block sizes: workers hold
// different numbers of blocks) and its coordinates.
struct Series {
  wa::Array t, time, lat, lon;
  Series(std::int64_t steps, double first)
      : t(wa::from_block_function(&positional_block, {steps, 37, 29}, wa::DType::float64, {2, 10, 8}) + first),
        time(wa::arange(wa::Scalar(first), wa::Scalar(first + static_cast<double>(steps)), wa::Scalar(1.0),
                        std::nullopt, 2)),
        lat(wa::linspace(-90.0, 90.0, 37, true, std::nullopt, 10)),
        lon(wa::arange(wa::Scalar(0.0), wa::Scalar(360.0), wa::Scalar(12.5), std::nullopt, 8)) {}
  std::vector<wio::NetcdfVariable> variables() const { return {{"t", t, {"time", "lat", "lon"}, {{"units", "K"}}}}; }
  std::vector<wio::NetcdfVariable> coords() const {
    return {{"time", time, {"time"}, {{"units", "days since 2000-01-01"}}},
            {"lat", lat, {"lat"}, {{"units", "degrees_north"}}},
            {"lon", lon, {"lon"}, {{"units", "degrees_east"}}}};
  }
};

}  // namespace

TEST_CASE("parallel NetCDF writes: CF variables, deflate, a 0-d variable", "[io-netcdf-dist]") {
  Scratch scratch("weft-io-netcdf-mpi");
  const Series s(5, 0.0);
  const wa::Array total = s.t.sum();
  for (const int deflate : {0, 2}) {
    const std::string path = scratch / ("cf-" + std::to_string(deflate) + ".nc");
    std::vector<wio::NetcdfVariable> variables = s.variables();
    variables.push_back({"total", total, {}, {{"long_name", "sum of t"}}});
    wio::to_netcdf(path, variables, s.coords(), {.deflate_level = deflate});
    const auto want = weft::compute(weft::scheduler::sync, s.t, total);
    const auto got = numpy(xarray_open(path) +
                           "import netCDF4\nn = netCDF4.Dataset('" + path + "')\n"
                           "assert ds['t'].dims == ('time', 'lat', 'lon') and ds['t'].attrs['units'] == 'K'\n"
                           "assert set(ds.coords) == {'time', 'lat', 'lon'} and ds.attrs['Conventions'] == 'CF-1.8'\n"
                           "assert n['t'].chunking() == [2, 10, 8], n['t'].chunking()\n"
                           "assert n['t'].filters()['zlib'] == " + std::string(deflate ? "True" : "False") + "\n"
                           "out = [ds['t'].values, ds['total'].values, ds['lat'].values]");
    INFO("deflate " << deflate);
    check_close(got[0], std::get<0>(want), 0.0, 0.0, true, "t");
    CHECK(got[1].item<double>() == std::get<1>(want).item<double>());
    check_close(got[2], s.lat.compute(weft::scheduler::sync), 0.0, 0.0, true, "lat");
    CHECK(wio::from_netcdf(path, "t", s.t.chunks()).compute().equals(std::get<0>(want)));
    CHECK(wio::from_netcdf(path, "t").compute().equals(std::get<0>(want)));
  }
  CHECK(scratch.entries() == std::vector<std::string>{"cf-0.nc", "cf-2.nc"});
}

TEST_CASE("parallel appends along time, read by xarray", "[io-netcdf-dist]") {
  Scratch scratch("weft-io-netcdf-mpi");
  const std::string path = scratch / "series.nc";
  std::vector<wa::Array> written;
  // 1, 3 and 1 records: times 0, 1-3 and 4.
  const std::int64_t records[] = {1, 3, 1};
  for (double first = 0; const std::int64_t n : records) {
    const Series s(n, first);
    first += static_cast<double>(n);
    written.push_back(s.t);
    wio::to_netcdf(path, s.variables(), s.coords(), {.append = true});
  }
  const wa::NDArray want = wa::concatenate(written).compute(weft::scheduler::sync);
  const auto got = numpy(xarray_open(path) + "assert ds.sizes['time'] == 5, ds.sizes\nout = [ds['t'].values, ds['time'].values]");
  check_close(got[0], want, 0.0, 0.0, true, "t");
  check_close(got[1], wa::NDArray::from<double>({0, 1, 2, 3, 4}), 0.0, 0.0, true, "time");
  CHECK(wio::from_netcdf(path, "t").compute().equals(want));

  // A failing append leaves the file as it was.
  const std::string before = text_of(path);
  const wa::Array bad = wa::from_block_function(&weft::test::failing_rows<1>, {2, 37, 29}, wa::DType::float64, {1, 10, 8});
  CHECK_THROWS_AS(wio::to_netcdf(path, {{"t", bad, {"time", "lat", "lon"}}}, {}, {.append = true}), weft::TaskError);
  CHECK(text_of(path) == before);
  CHECK(scratch.entries() == std::vector<std::string>{"series.nc"});
}

TEST_CASE("a parallel NetCDF write whose task fails leaves no file", "[io-netcdf-dist]") {
  Scratch scratch("weft-io-netcdf-mpi");
  const wa::Array bad = wa::from_block_function(&weft::test::failing_rows<1>, {40, 40}, wa::DType::float64, 10);
  CHECK_THROWS_AS(wio::to_netcdf(scratch / "bad.nc", {{"x", bad, {"y", "x"}}}), weft::TaskError);
  CHECK(scratch.entries().empty());
}

int main(int argc, char** argv) { return weft::mpi_test::run_catch_session(argc, argv, "io-netcdf-test"); }
