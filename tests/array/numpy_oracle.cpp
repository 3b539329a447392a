// tests/array/numpy_oracle.cpp - runs NumPy in a child python3 (see the header).
#include "numpy_oracle.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "block_inputs.hpp"

namespace weft::test {
namespace {

namespace fs = std::filesystem;
namespace wa = weft::array;

// Loads the inputs, runs the code, writes `out`'s elements back. Inputs and
// outputs are raw C-order bytes plus a JSON list of dtypes and shapes.
constexpr const char* kRunner = R"PY(
import json, sys, traceback
import numpy as np
d = sys.argv[1]
meta = json.load(open(d + "/in.json"))
env = {"np": np}
for i, item in enumerate(meta["inputs"]):
    a = np.fromfile(d + "/in%d.bin" % i, dtype=np.dtype(item["dtype"]))
    env[item["name"]] = a.reshape(tuple(item["shape"]))
try:
    exec(meta["code"], env)
    out = env["out"]
    items = list(out) if isinstance(out, (list, tuple)) else [out]
    described = []
    for i, o in enumerate(items):
        a = np.asarray(o)
        if a.dtype.kind not in "biufc" or a.dtype == np.float16:
            raise TypeError("result %d has dtype %s, which weft has no DType for" % (i, a.dtype))
        a.tofile(d + "/out%d.bin" % i)
        described.append({"dtype": a.dtype.name, "shape": list(a.shape)})
    json.dump(described, open(d + "/out.json", "w"))
except Exception:
    traceback.print_exc()
    sys.exit(1)
)PY";

std::string python() {
  const char* configured = std::getenv("PYTHON_NUMPY");
  return configured && *configured ? configured : "/usr/bin/python3";
}

void write_file(const fs::path& path, const void* data, std::size_t n) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!out) throw std::runtime_error("numpy oracle: cannot write " + path.string());
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "weft-numpy-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("numpy oracle: mkdtemp failed");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

// Runs python on the runner; returns its exit status and what it printed.
std::pair<int, std::string> run_python(const fs::path& dir) {
  write_file(dir / "runner.py", kRunner, std::char_traits<char>::length(kRunner));
  const std::string command =
      "'" + python() + "' '" + (dir / "runner.py").string() + "' '" + dir.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("numpy oracle: cannot start " + python());
  std::string printed;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) printed.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, printed};
}

// Both values agree as np.isclose(got, want, rtol, atol, equal_nan=True).
bool close(std::complex<double> got, std::complex<double> want, double rtol, double atol) {
  auto part = [&](double g, double w) {
    if (std::isnan(g) || std::isnan(w)) return std::isnan(g) && std::isnan(w);
    if (std::isinf(g) || std::isinf(w)) return g == w;
    return std::fabs(g - w) <= atol + rtol * std::fabs(w);
  };
  return part(got.real(), want.real()) && part(got.imag(), want.imag());
}

template <class T>
std::string show(const T& v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

std::vector<wa::NDArray> numpy(const std::string& code, const NumpyInputs& inputs) {
  TempDir dir;
  nlohmann::json meta;
  meta["code"] = code;
  meta["inputs"] = nlohmann::json::array();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const wa::NDArray c = inputs[i].second.contiguous();
    write_file(dir.path / ("in" + std::to_string(i) + ".bin"), c.raw_data(), c.nbytes());
    meta["inputs"].push_back(
        {{"name", inputs[i].first}, {"dtype", std::string(wa::dtype_name(c.dtype()))}, {"shape", c.shape()}});
  }
  const std::string text = meta.dump();
  write_file(dir.path / "in.json", text.data(), text.size());
  const auto [status, printed] = run_python(dir.path);
  if (status != 0) FAIL("NumPy failed on:\n" << code << "\n" << printed);
  std::ifstream described_file(dir.path / "out.json");
  const nlohmann::json described = nlohmann::json::parse(described_file);
  std::vector<wa::NDArray> out;
  for (std::size_t i = 0; i < described.size(); ++i) {
    wa::NDArray a(wa::dtype_from_name(described[i]["dtype"].get<std::string>()),
                  described[i]["shape"].get<wa::Shape>());
    std::ifstream bytes(dir.path / ("out" + std::to_string(i) + ".bin"), std::ios::binary);
    bytes.read(static_cast<char*>(a.raw_data()), static_cast<std::streamsize>(a.nbytes()));
    if (static_cast<std::size_t>(bytes.gcount()) != a.nbytes())
      FAIL("NumPy result " << i << " is short: " << bytes.gcount() << " of " << a.nbytes() << " bytes");
    out.push_back(std::move(a));
  }
  return out;
}

void check_close(const wa::NDArray& got, const wa::NDArray& want, double rtol, double atol,
                 bool check_dtype, const std::string& what) {
  INFO(what << (what.empty() ? "" : ": ") << "got " << wa::dtype_name(got.dtype())
            << wa::shape_str(got.shape()) << ", want " << wa::dtype_name(want.dtype())
            << wa::shape_str(want.shape()));
  if (check_dtype) CHECK(got.dtype() == want.dtype());
  REQUIRE(got.shape() == want.shape());
  const bool exact = !wa::is_inexact(got.dtype()) && !wa::is_inexact(want.dtype());
  std::int64_t mismatches = 0;
  std::string first;
  if (exact) {
    const bool unsigned64 = got.dtype() == wa::DType::uint64 || want.dtype() == wa::DType::uint64;
    const wa::DType as = unsigned64 ? wa::DType::uint64 : wa::DType::int64;
    const wa::NDArray g = got.astype(as), w = want.astype(as);
    for (std::int64_t i = 0; i < g.size(); ++i) {
      const bool same = unsigned64 ? g.data<std::uint64_t>()[i] == w.data<std::uint64_t>()[i]
                                   : g.data<std::int64_t>()[i] == w.data<std::int64_t>()[i];
      if (!same && mismatches++ == 0)
        first = "element " + std::to_string(i) + ": got " +
                (unsigned64 ? show(g.data<std::uint64_t>()[i]) : show(g.data<std::int64_t>()[i])) +
                ", want " +
                (unsigned64 ? show(w.data<std::uint64_t>()[i]) : show(w.data<std::int64_t>()[i]));
    }
  } else {
    const wa::NDArray g = got.astype(wa::DType::complex128), w = want.astype(wa::DType::complex128);
    const auto* gp = g.data<std::complex<double>>();
    const auto* wp = w.data<std::complex<double>>();
    for (std::int64_t i = 0; i < g.size(); ++i)
      if (!close(gp[i], wp[i], rtol, atol) && mismatches++ == 0)
        first = "element " + std::to_string(i) + ": got " + show(gp[i]) + ", want " + show(wp[i]);
  }
  INFO(mismatches << " of " << got.size() << " elements differ; first " << first);
  CHECK(mismatches == 0);
}

wa::NDArray computed_everywhere(const wa::Array& x) {
  wa::NDArray sync = x.compute(scheduler::sync);
  CHECK(sync.shape() == x.shape());
  CHECK(sync.dtype() == x.dtype());
  for (const auto choice : test_schedulers())
    if (choice.kind != SchedulerKind::sync)
      check_close(x.compute(choice), sync, 0.0, 0.0, true, std::string(to_string(choice.kind)) + " vs sync");
  return sync;
}

}  // namespace weft::test
