// weft/io/netcdf.hpp on the sync and threads schedulers: CF files checked by
// xarray and netCDF4 (values, dims, coordinates, attributes, chunking), by
// ncdump and cdo; appending along time; files xarray wrote read by weft; the
// errors before any task runs, and a write that fails half-way leaving no
// file behind.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "array/numpy_oracle.hpp"
#include "io/block_functions.hpp"
#include "io/scratch.hpp"
#include "weft/array.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"
#include "weft/io/netcdf.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
namespace wio = weft::io;
using Catch::Matchers::Contains;
using weft::test::check_close;
using weft::test::numpy;
using weft::test::Scratch;
using weft::test::text_of;

namespace {

const weft::SchedulerChoice kSchedulers[] = {weft::scheduler::sync, weft::scheduler::threads};

// Python code that opens `path` with xarray as ds (times left as numbers).
std::string xarray_open(const std::string& path) {
  return "import xarray as xr\nds = xr.open_dataset('" + path + "', decode_times=False)\n";
}

// `command`'s exit status and what it printed (stdout and stderr).
std::pair<int, std::string> run(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::string out;
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  return {::pclose(pipe), out};
}

// A CF data set: t(time, lat, lon) with its three coordinate variables.
struct CfData {
  wa::Array t, time, lat, lon;
  explicit CfData(std::int64_t steps, double first_day = 0.0)
      : t(wa::random::random({steps, 6, 8}, {2, 4, 5}) * 30.0 + 260.0),
        time(wa::arange(wa::Scalar(first_day), wa::Scalar(first_day + static_cast<double>(steps)), wa::Scalar(1.0),
                        std::nullopt, 2)),
        lat(wa::linspace(-75.0, 75.0, 6, true, std::nullopt, 4)),
        lon(wa::arange(wa::Scalar(0.0), wa::Scalar(360.0), wa::Scalar(45.0), std::nullopt, 5)) {}
  std::vector<wio::NetcdfVariable> variables() const {
    return {{"t", t, {"time", "lat", "lon"}, {{"units", "K"}, {"long_name", "air temperature"},
                                              {"standard_name", "air_temperature"}}}};
  }
  std::vector<wio::NetcdfVariable> coords() const {
    return {{"time", time, {"time"}, {{"units", "days since 2000-01-01 00:00:00"}, {"calendar", "standard"},
                                      {"standard_name", "time"}, {"axis", "T"}}},
            {"lat", lat, {"lat"}, {{"units", "degrees_north"}, {"standard_name", "latitude"}, {"axis", "Y"}}},
            {"lon", lon, {"lon"}, {{"units", "degrees_east"}, {"standard_name", "longitude"}, {"axis", "X"}}}};
  }
};

void fails(const std::function<void()>& call, const std::string& id, const std::string& text) {
  try {
    call();
    FAIL("no error; expected " + id);
  } catch (const weft::Error& e) {
    CHECK(e.id() == id);
    CHECK_THAT(e.text(), Contains(text));
  }
}

}  // namespace

TEST_CASE("to_netcdf writes a CF file that xarray, netCDF4, ncdump and cdo read", "[io-netcdf]") {
  Scratch scratch("weft-io-netcdf");
  const CfData data(4);
  const wa::NDArray t = data.t.compute();
  for (const auto scheduler : kSchedulers) {
    const std::string path = scratch / ("cf-" + std::string(weft::to_string(scheduler.kind)) + ".nc");
    wio::to_netcdf(path, data.variables(), data.coords(), {.global_attributes = {{"title", "weft test"}}}, scheduler);
    const auto got = numpy(xarray_open(path) +
                           "import netCDF4\n"
                           "n = netCDF4.Dataset('" + path + "')\n"
                           "t = ds['t']\n"
                           "assert t.dims == ('time', 'lat', 'lon'), t.dims\n"
                           "assert set(ds.coords) == {'time', 'lat', 'lon'}, ds.coords\n"
                           "assert t.attrs['units'] == 'K' and t.attrs['long_name'] == 'air temperature', t.attrs\n"
                           "assert ds['lat'].attrs['units'] == 'degrees_north'\n"
                           "assert ds.attrs == {'Conventions': 'CF-1.8', 'title': 'weft test'}, ds.attrs\n"
                           "assert n.dimensions['time'].isunlimited() and not n.dimensions['lat'].isunlimited()\n"
                           "assert n['t'].chunking() == [2, 4, 5], n['t'].chunking()\n"
                           "assert n.data_model == 'NETCDF4'\n"
                           "out = [t.values, ds['time'].values, ds['lat'].values, ds['lon'].values]");
    check_close(got[0], t, 0.0, 0.0, true, "xarray's t");
    check_close(got[1], data.time.compute(), 0.0, 0.0, true, "xarray's time");
    check_close(got[2], data.lat.compute(), 0.0, 0.0, true, "xarray's lat");
    check_close(got[3], data.lon.compute(), 0.0, 0.0, true, "xarray's lon");

    const auto [ncdump_status, header] = run("ncdump -h '" + path + "'");
    CHECK(ncdump_status == 0);
    CHECK_THAT(header, Contains("time = UNLIMITED ; // (4 currently)") && Contains("double t(time, lat, lon) ;") &&
                           Contains(":Conventions = \"CF-1.8\" ;"));
    const auto [cdo_status, info] = run("cdo -s sinfo '" + path + "'");
    CHECK(cdo_status == 0);
    CHECK_THAT(info, Contains("t") && Contains("lonlat") && !Contains("arning"));

    // weft reads back what it wrote; "auto" grows the variable's chunks
    // (2, 4, 5) by whole multiples, here to the whole small array.
    const wa::Array back = wio::from_netcdf(path, "t");
    CHECK(back.chunks() == wa::Chunks{{4}, {6}, {8}});
    CHECK(back.compute(scheduler).equals(t));
    CHECK(wio::netcdf_dims(path, "t") == std::vector<std::string>{"time", "lat", "lon"});
    const wio::NetcdfAttributes attributes = wio::netcdf_attributes(path, "t");
    CHECK(attributes.at("units") == wio::NetcdfAttribute(std::string("K")));
    CHECK(wio::netcdf_attributes(path).at("Conventions") == wio::NetcdfAttribute(std::string("CF-1.8")));
  }
  CHECK(scratch.entries() == std::vector<std::string>{"cf-sync.nc", "cf-threads.nc"});
}

TEST_CASE("to_netcdf keeps the dtypes, attributes of every kind and deflate", "[io-netcdf]") {
  Scratch scratch("weft-io-netcdf");
  const std::string path = scratch / "types.nc";
  const wa::Array base = wa::arange(wa::Scalar(std::int64_t{-30}), wa::Scalar(std::int64_t{30}),
                                    wa::Scalar(std::int64_t{1}), std::nullopt, 7)
                             .reshape({6, 10});
  const wa::DType types[] = {wa::DType::float32, wa::DType::float64, wa::DType::int64, wa::DType::int8,
                             wa::DType::int16,   wa::DType::uint16,  wa::DType::uint64, wa::DType::bool_};
  std::vector<wio::NetcdfVariable> variables;
  std::string code = xarray_open(path) + "import netCDF4\nn = netCDF4.Dataset('" + path + "')\nout = []\n";
  for (const wa::DType t : types) {
    const std::string name(wa::dtype_name(t));
    variables.push_back({name, t == wa::DType::bool_ ? base > 3 : base.astype(t), {"y", "x"}});
    code += "out += [ds['" + name + "'].values, np.array(str(ds['" + name + "'].dtype) == '" + name + "')]\n";
  }
  variables[0].attributes = {{"count", std::int64_t{3}}, {"scale", 0.5}, {"note", "text"},
                             {"ids", std::vector<std::int64_t>{1, 2}}, {"range", std::vector<double>{-1.5, 2.5}}};
  code += "a = ds['float32'].attrs\n"
          "assert a['count'] == 3 and a['scale'] == 0.5 and a['note'] == 'text', a\n"
          "assert list(a['ids']) == [1, 2] and list(a['range']) == [-1.5, 2.5], a\n"
          "f = n['float64'].filters()\n"
          "assert f['zlib'] and f['shuffle'] and f['complevel'] == 4, f\n";
  wio::to_netcdf(path, variables, {}, {.deflate_level = 4}, weft::scheduler::threads);
  const auto got = numpy(code);
  for (std::size_t i = 0; i < variables.size(); ++i) {
    const wa::NDArray want = variables[i].data.compute();
    INFO(variables[i].name);
    check_close(got[2 * i], want, 0.0, 0.0, true, "xarray's " + variables[i].name);
    CHECK(got[2 * i + 1].item<bool>());
    const wa::Array back = wio::from_netcdf(path, variables[i].name, wa::ChunkSpec{4, 3});
    CHECK(back.dtype() == want.dtype());
    CHECK(back.chunks() == wa::Chunks{{4, 2}, {3, 3, 3, 1}});
    CHECK(back.compute(weft::scheduler::sync).equals(want));
  }
  const wio::NetcdfAttributes attributes = wio::netcdf_attributes(path, "float32");
  CHECK(attributes.at("ids") == wio::NetcdfAttribute(std::vector<std::int64_t>{1, 2}));
  CHECK(attributes.at("range") == wio::NetcdfAttribute(std::vector<double>{-1.5, 2.5}));
  CHECK(attributes.at("scale") == wio::NetcdfAttribute(0.5));
  fails([&] { wio::to_netcdf(scratch / "c.nc", {{"c", base.astype(wa::DType::complex64), {"y", "x"}}}); },
        "type.unsupported-dtype", "variable 'c' is complex64, which NetCDF cannot store");
}

TEST_CASE("to_netcdf appends records along the unlimited time dimension", "[io-netcdf]") {
  Scratch scratch("weft-io-netcdf");
  for (const auto scheduler : kSchedulers) {
    const std::string path = scratch / ("series-" + std::string(weft::to_string(scheduler.kind)) + ".nc");
    // Appending to a missing file creates it; each later call adds records.
    std::vector<wa::NDArray> steps;
    for (int step = 0; step < 3; ++step) {
      const CfData data(1, step);
      steps.push_back(data.t.compute());
      wio::to_netcdf(path, data.variables(), data.coords(), {.append = true}, scheduler);
    }
    const wa::NDArray want = wa::concatenate({wa::from_array(steps[0]), wa::from_array(steps[1]),
                                              wa::from_array(steps[2])})
                                 .compute();
    const auto got = numpy(xarray_open(path) + "assert ds.sizes['time'] == 3, ds.sizes\n"
                                               "out = [ds['t'].values, ds['time'].values]");
    check_close(got[0], want, 0.0, 0.0, true, "xarray's t");
    check_close(got[1], wa::NDArray::from<double>({0, 1, 2}), 0.0, 0.0, true, "xarray's time");
    CHECK(wio::from_netcdf(path, "t").compute(scheduler).equals(want));

    // What does not fit the file is refused before any task runs, the file untouched.
    const std::string before = text_of(path);
    const CfData other(1);
    fails([&] { wio::to_netcdf(path, {{"u", other.t, {"time", "lat", "lon"}}}, {}, {.append = true}); },
          "io.no-such-variable", "has no variable 'u'");
    fails([&] { wio::to_netcdf(path, {{"t", other.t.astype(wa::DType::float32), {"time", "lat", "lon"}}}, {},
                               {.append = true}); },
          "value.append-mismatch", "variable 't' is float64 there, not float32");
    fails([&] { wio::to_netcdf(path, {{"t", other.t, {"time", "lat", "lon"}}}, {},
                               {.append = true, .unlimited_dim = "lat"}); },
          "value.append-mismatch", "it has no unlimited dimension 'lat'");
    fails([&] { wio::to_netcdf(path, {{"t", wa::zeros({1, 6, 7}), {"time", "lat", "lon"}}}, {}, {.append = true}); },
          "value.append-mismatch", "dimension 'lon' of variable 't' has length 8 there, not 7");
    CHECK(text_of(path) == before);
  }
  CHECK(scratch.entries() == std::vector<std::string>{"series-sync.nc", "series-threads.nc"});
}

TEST_CASE("from_netcdf reads files xarray wrote", "[io-netcdf]") {
  Scratch scratch("weft-io-netcdf");
  const std::string path = scratch / "by-xarray.nc";
  const auto want = numpy("import xarray as xr\n"
                          "rng = np.random.default_rng(7)\n"
                          "p = rng.random((5, 9, 4)).astype('f4')\n"
                          "q = np.arange(36, dtype='i2').reshape(9, 4)\n"
                          "m = q % 3 == 0\n"
                          "ds = xr.Dataset({'p': (('time', 'y', 'x'), p, {'units': 'hPa'}),\n"
                          "                 'q': (('y', 'x'), q), 'm': (('y', 'x'), m)},\n"
                          "                coords={'time': np.arange(5.0), 'y': np.arange(9.0)})\n"
                          "ds.to_netcdf('" + path + "', unlimited_dims=['time'],\n"
                          "             encoding={'p': {'chunksizes': (1, 3, 4), 'zlib': True}})\n"
                          "out = [p, q, m]");
  const wa::Array p = wio::from_netcdf(path, "p");
  CHECK(p.dtype() == wa::DType::float32);
  CHECK(p.shape() == wa::Shape{5, 9, 4});
  CHECK(p.compute().equals(want[0]));
  CHECK(wio::from_netcdf(path, "p", wa::ChunkSpec{2, 3, 4}).chunks() == wa::Chunks{{2, 2, 1}, {3, 3, 3}, {4}});
  CHECK(wio::from_netcdf(path, "q").compute(weft::scheduler::threads).equals(want[1]));
  const wa::Array m = wio::from_netcdf(path, "m");
  CHECK(m.dtype() == wa::DType::bool_);
  CHECK(m.compute().equals(want[2]));
  CHECK(wio::netcdf_dims(path, "p") == std::vector<std::string>{"time", "y", "x"});
  CHECK(wio::netcdf_attributes(path, "p").at("units") == wio::NetcdfAttribute(std::string("hPa")));
}

TEST_CASE("from_netcdf copies unfiltered NetCDF-4 variables out of the file, NetCDF reads the others", "[io-netcdf]") {
  Scratch scratch("weft-io-netcdf");
  const std::string path = scratch / "mixed.nc", classic = scratch / "classic.nc";
  // 'x' shares its name with a dimension it is not the coordinate of
  // (NetCDF-C stores it as _nc4_non_coord_x); 'y' is a coordinate variable;
  // 'z' (deflated), 'big' (big-endian) and 'partial' (chunks never written)
  // cannot be copied as stored; a classic file is no HDF5 file.
  const auto want = numpy("import netCDF4\n"
                          "rng = np.random.default_rng(5)\n"
                          "x = rng.random((1200, 1100))\n"
                          "t = rng.integers(-100, 100, size=(7, 300)).astype('i2')\n"
                          "partial = np.full((7, 300), -9, dtype='i2')\n"
                          "partial[0:2, 0:100] = t[0:2, 0:100]\n"
                          "with netCDF4.Dataset('" + path + "', 'w') as f:\n"
                          "    for name, n in (('y', 1200), ('x', 1100), ('t', 7), ('n', 300)):\n"
                          "        f.createDimension(name, n)\n"
                          "    f.createVariable('x', 'f8', ('y', 'x'), chunksizes=(500, 600))[:] = x\n"
                          "    f.createVariable('contig', 'f8', ('y', 'x'), contiguous=True)[:] = x * 2\n"
                          "    f.createVariable('y', 'f8', ('y',))[:] = np.arange(1200) * 0.5\n"
                          "    f.createVariable('z', 'f8', ('y', 'x'), zlib=True, chunksizes=(500, 600))[:] = x\n"
                          "    f.createVariable('big', 'f8', ('y', 'x'), endian='big', chunksizes=(500, 600))[:] = x\n"
                          "    p = f.createVariable('partial', 'i2', ('t', 'n'), chunksizes=(2, 100), fill_value=-9)\n"
                          "    p[0:2, 0:100] = t[0:2, 0:100]\n"
                          "with netCDF4.Dataset('" + classic + "', 'w', format='NETCDF3_CLASSIC') as f:\n"
                          "    f.createDimension('y', 1200)\n"
                          "    f.createDimension('x', 1100)\n"
                          "    f.createVariable('x', 'f8', ('y', 'x'))[:] = x\n"
                          "out = [x, x * 2, np.arange(1200) * 0.5, partial]");
  const bool direct_io = weft::test::takes_direct_io(path);
  for (const char* direct_reads : {"auto", "always", "never"}) {
    INFO(direct_reads);
    weft::config::set scope{{"io.direct-reads", direct_reads}};
    weft::test::drop_from_page_cache(path);
    for (const auto scheduler : kSchedulers) {
      for (const wa::ChunkSpec& blocks : {wa::ChunkSpec{500, 600}, wa::ChunkSpec{1200, 1100}, wa::ChunkSpec{333, 1100}}) {
        CHECK(wio::from_netcdf(path, "x", blocks).compute(scheduler).equals(want[0]));
        CHECK(wio::from_netcdf(path, "contig", blocks).compute(scheduler).equals(want[1]));
        CHECK(wio::from_netcdf(path, "z", blocks).compute(scheduler).equals(want[0]));
        CHECK(wio::from_netcdf(path, "big", blocks).compute(scheduler).equals(want[0]));
        CHECK(wio::from_netcdf(classic, "x", blocks).compute(scheduler).equals(want[0]));
      }
      CHECK(wio::from_netcdf(path, "y", wa::ChunkSpec{250}).compute(scheduler).equals(want[2]));
      CHECK(wio::from_netcdf(path, "partial", wa::ChunkSpec{3, 70}).compute(scheduler).equals(want[3]));
    }
    // x and contig (21 MB) bypassed the page cache with O_DIRECT; NetCDF
    // read z and big (about 20 MB) through it.
    if (direct_io && std::string(direct_reads) == "always") {
      const auto page = ::sysconf(_SC_PAGESIZE);
      CHECK(weft::test::cached_pages(path) * page < 1200 * 1100 * 8 * 3);
    }
  }
  // A variable written by weft (bool as int8, marked) copies the same way.
  const wa::Array m = wa::random::random({700, 900}, {350, 450}) > 0.5;
  wio::to_netcdf(scratch / "m.nc", {{"m", m, {"y", "x"}}});
  weft::config::set scope{{"io.direct-reads", "always"}};
  CHECK(wio::from_netcdf(scratch / "m.nc", "m").compute(weft::scheduler::threads).equals(m.compute()));
}

TEST_CASE("from_netcdf reads a file again when it was rewritten, by weft or by another program", "[io-netcdf]") {
  Scratch scratch("weft-io-netcdf");
  const std::string path = scratch / "again.nc";
  const wa::Array first = wa::random::random({6, 8}, {3, 4});
  wio::to_netcdf(path, {{"v", first, {"y", "x"}}});
  CHECK(wio::from_netcdf(path, "v").compute(weft::scheduler::threads).equals(first.compute()));
  // Renamed over the file: the path names another inode, which is opened anew.
  const wa::Array second = first + 1.0;
  wio::to_netcdf(path, {{"v", second, {"y", "x"}}}, {}, {.overwrite = true});
  CHECK(wio::from_netcdf(path, "v").compute(weft::scheduler::threads).equals(second.compute()));
  // Rewritten in place by xarray (another size) once weft closed the files it kept open.
  wio::close_netcdf_files();
  const auto want = numpy("import xarray as xr\n"
                          "x = np.arange(20.0).reshape(4, 5)\n"
                          "xr.Dataset({'v': (('y', 'x'), x)}).to_netcdf('" + path + "', mode='w')\n"
                          "out = [x]");
  const wa::Array third = wio::from_netcdf(path, "v");
  CHECK(third.shape() == wa::Shape{4, 5});
  CHECK(third.compute().equals(want[0]));
}

TEST_CASE("from_netcdf and to_netcdf name the path and the problem before any task runs", "[io-netcdf]") {
  Scratch scratch("weft-io-netcdf");
  const std::string path = scratch / "a.nc";
  const wa::Array x = wa::ones({4, 6}, wa::DType::float64, 2);
  wio::to_netcdf(path, {{"x", x, {"y", "x"}}});

  fails([&] { wio::from_netcdf(scratch / "missing.nc", "x"); }, "io.cannot-open", "missing.nc': No such file");
  std::ofstream(scratch / "text.nc") << "not netcdf";
  fails([&] { wio::from_netcdf(scratch / "text.nc", "x"); }, "io.cannot-open", "text.nc': not a NetCDF file");
  fails([&] { wio::from_netcdf(path, "nope"); }, "io.no-such-variable", "'" + path + "' has no variable 'nope'");
  fails([&] { wio::netcdf_dims(path, "nope"); }, "io.no-such-variable", "has no variable 'nope'");

  const std::string out = scratch / "out.nc";
  fails([&] { wio::to_netcdf(out, {{"x", x, {"y"}}}); }, "value.dim-mismatch",
        "variable 'x' has 2 axes but 1 dimension names");
  fails([&] { wio::to_netcdf(out, {{"x", x, {"y", "x"}}}, {{"y", wa::ones({5}), {"y"}}}); }, "value.dim-mismatch",
        "dimension 'y' has length 5 elsewhere but 4 in variable 'x'");
  fails([&] { wio::to_netcdf(out, {{"x", x, {"y", "x"}}}, {{"lat", wa::ones({4}), {"y"}}}); }, "value.dim-mismatch",
        "coordinate 'lat' must be 1-d along a dimension of its own name");
  fails([&] { wio::to_netcdf(out, {{"x", x, {"y", "x"}}, {"x", x, {"y", "x"}}}); }, "value.duplicate-variable",
        "variable 'x' is given twice");
  fails([&] { wio::to_netcdf(out, {{"e", wa::ones({0}), {"e"}}}); }, "value.dim-mismatch",
        "dimension 'e' of variable 'e' has length 0");
  fails([&] { wio::to_netcdf(out, {{"x", x, {"y", "x"}}}, {}, {.deflate_level = 10}); }, "value.bad-option",
        "deflate_level 10");
  fails([&] { wio::to_netcdf(out, {}); }, "value.bad-option", "no variables");
  fails([&] { wio::to_netcdf(scratch / "no/such/folder/x.nc", {{"x", x, {"y", "x"}}}); }, "io.cannot-write",
        "does not exist");

  // An existing file needs overwrite, and stays as it was without it.
  std::ofstream(out) << "precious";
  fails([&] { wio::to_netcdf(out, {{"x", x, {"y", "x"}}}); }, "io.target-exists",
        out + "' exists; pass overwrite = true");
  CHECK(text_of(out) == "precious");
  wio::to_netcdf(out, {{"x", x * 2.0, {"y", "x"}}}, {}, {.overwrite = true});
  CHECK(wio::from_netcdf(out, "x").compute().equals((x * 2.0).compute()));
  CHECK(scratch.entries() == std::vector<std::string>{"a.nc", "out.nc", "text.nc"});
}

TEST_CASE("a NetCDF write that fails half-way leaves no file and an existing one untouched", "[io-netcdf]") {
  Scratch scratch("weft-io-netcdf");
  const std::string fresh = scratch / "fresh.nc", existing = scratch / "existing.nc";
  const wa::Array bad = wa::from_block_function(&weft::test::failing_antidiagonal<3>, {8, 8}, wa::DType::float64, 2);
  const wa::Array good = wa::ones({3, 8}, wa::DType::float64, 2);
  wio::to_netcdf(existing, {{"x", good, {"time", "x"}}});
  const std::string before = text_of(existing);
  for (const auto scheduler : kSchedulers) {
    CHECK_THROWS_AS(wio::to_netcdf(fresh, {{"x", bad, {"y", "x"}}}, {}, {}, scheduler), weft::TaskError);
    CHECK_THROWS_AS(wio::to_netcdf(existing, {{"x", bad, {"y", "x"}}}, {}, {.overwrite = true}, scheduler),
                    weft::TaskError);
    CHECK_THROWS_AS(wio::to_netcdf(existing, {{"x", bad, {"time", "x"}}}, {}, {.append = true}, scheduler),
                    weft::TaskError);
  }
  CHECK(text_of(existing) == before);
  CHECK(scratch.entries() == std::vector<std::string>{"existing.nc"});
}
