// weft::Graph: hand-written graphs (task, literal, ref), lookups,
// dependencies, validation (missing dependencies, cycles), cull, get() on
// both local schedulers, task errors, Delayed graphs, Graphviz output, merge.
#include "weft/graph.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <stdlib.h>  // mkdtemp

#include "weft/compute.hpp"
#include "weft/delayed.hpp"
#include "weft/error.hpp"
#include "weft/task.hpp"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace weft_test_graph {

int inc(int x) { return x + 1; }
int add(int a, int b) { return a + b; }
int twice(int x) { return 2 * x; }
int sum(const std::vector<int>& xs) {
  int total = 0;
  for (int x : xs) total += x;
  return total;
}
double half(double x) { return x / 2; }
int explode(int) { throw std::runtime_error("boom from explode"); }

}  // namespace weft_test_graph

namespace {
// test_tokenize.cpp has a function of the same name and signature in its own
// anonymous namespace: keys must still tell them apart.
int local_twin(int x) { return x * 100; }
}  // namespace
int (*weft_test_graph_local_twin())(int);
int (*weft_test_graph_local_twin())(int) { return &local_twin; }

namespace {

using namespace weft_test_graph;

std::vector<std::string> strs(const std::vector<weft::Key>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(k.str());
  return out;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// x = 1; y = x + 1; z = x + y
weft::Graph small_graph() {
  weft::Graph g;
  g.add(weft::literal("x", 1));
  g.add(weft::task("y", inc, weft::ref<int>("x")));
  g.add(weft::task("z", add, weft::ref<int>("x"), weft::ref<int>("y")));
  return g;
}

// A fresh folder under the system's temporary folder, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "weft-graph-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("Graph add, contains, at, find, keys and size", "[graph]") {
  weft::Graph g;
  CHECK(g.size() == 0);
  CHECK(g.keys().empty());
  CHECK_FALSE(g.contains("x"));
  CHECK(g.find("x") == nullptr);

  weft::TaskPtr x = weft::literal("x", 1);
  weft::TaskPtr y = weft::task("y", inc, weft::ref<int>("x"));
  weft::TaskPtr a = weft::task("a", twice, 3);
  g.add(y);  // a task may be added before what it depends on
  g.add(x);
  g.add(a);
  CHECK(g.size() == 3);
  CHECK(strs(g.keys()) == std::vector<std::string>{"y", "x", "a"});
  CHECK(g.contains("x"));
  CHECK(g.contains(weft::Key("y")));
  CHECK_FALSE(g.contains("z"));
  CHECK(g.at("x") == x);
  CHECK(g.at("y") == y);
  REQUIRE(g.find("a") != nullptr);
  CHECK(*g.find("a") == a);
  CHECK(g.at("y")->key() == weft::Key("y"));
}

TEST_CASE("adding a key twice keeps the first task", "[graph]") {
  weft::Graph g;
  weft::TaskPtr first = weft::literal("x", 1);
  g.add(first);
  g.add(weft::literal("x", 2));
  CHECK(g.size() == 1);
  CHECK(g.at("x") == first);
  std::vector<weft::Value> out = weft::get(g, {"x"});
  CHECK(out.at(0).get<int>() == 1);
}

TEST_CASE("Graph::add rejects a null task", "[graph]") {
  weft::Graph g;
  CHECK_THROWS_AS(g.add(nullptr), weft::ValueError);
  try {
    g.add(nullptr);
    FAIL("no exception");
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.null-task");
  }
  CHECK(g.size() == 0);
}

TEST_CASE("looking up a missing key is GraphError graph.missing-key", "[graph]") {
  weft::Graph g = small_graph();
  CHECK_THROWS_AS(g.at("nope"), weft::GraphError);
  try {
    (void)g.at("nope");
    FAIL("no exception");
  } catch (const weft::GraphError& e) {
    CHECK(e.id() == "graph.missing-key");
    CHECK_THAT(e.what(), Contains("'nope'"));
  }
  try {
    (void)g.dependencies("nope");
    FAIL("no exception");
  } catch (const weft::GraphError& e) {
    CHECK(e.id() == "graph.missing-key");
  }
}

TEST_CASE("dependencies are listed once each, in argument order", "[graph]") {
  weft::Graph g;
  g.add(weft::literal("p", 1));
  g.add(weft::literal("q", 2));
  weft::TaskPtr r = weft::task("r", sum,
                               std::vector<weft::Ref<int>>{weft::ref<int>("q"), weft::ref<int>("p"),
                                                           weft::ref<int>("q")});
  g.add(r);
  g.add(weft::task("s", add, weft::ref<int>("r"), weft::ref<int>("r")));

  // The task itself keeps every argument; the graph deduplicates.
  CHECK(r->dependencies().size() == 3);
  CHECK(strs(g.dependencies("r")) == std::vector<std::string>{"q", "p"});
  CHECK(strs(g.dependencies("s")) == std::vector<std::string>{"r"});
  CHECK(g.dependencies("p").empty());

  // Repeated arguments still each get the value.
  auto sched = GENERATE(weft::scheduler::sync, weft::scheduler::threads);
  std::vector<weft::Value> out = weft::get(g, {"r", "s"}, sched);
  CHECK(out.at(0).get<int>() == 5);
  CHECK(out.at(1).get<int>() == 10);
}

TEST_CASE("dependents are the reverse of dependencies", "[graph]") {
  weft::Graph g = small_graph();
  auto deps = g.dependents();
  CHECK(deps.size() == 3);
  CHECK(strs(deps.at("x")) == std::vector<std::string>{"y", "z"});
  CHECK(strs(deps.at("y")) == std::vector<std::string>{"z"});
  CHECK(deps.at("z").empty());
}

TEST_CASE("validate finds a missing dependency and names both keys", "[graph]") {
  CHECK_NOTHROW(small_graph().validate());

  weft::Graph g;
  g.add(weft::literal("x", 1));
  g.add(weft::task("needs-w", add, weft::ref<int>("x"), weft::ref<int>("w")));
  CHECK_THROWS_AS(g.validate(), weft::GraphError);
  try {
    g.validate();
    FAIL("no exception");
  } catch (const weft::GraphError& e) {
    CHECK(e.id() == "graph.missing-dependency");
    CHECK_THAT(e.what(), Contains("'needs-w'"));
    CHECK_THAT(e.what(), Contains("'w'"));
  }
  // get() validates first.
  try {
    weft::get(g, {"x"});
    FAIL("no exception");
  } catch (const weft::GraphError& e) {
    CHECK(e.id() == "graph.missing-dependency");
  }
}

TEST_CASE("validate finds cycles and names the keys on them", "[graph]") {
  weft::Graph g;
  std::string expected;
  SECTION("three keys") {
    g.add(weft::task("a", inc, weft::ref<int>("b")));
    g.add(weft::task("b", inc, weft::ref<int>("c")));
    g.add(weft::task("c", inc, weft::ref<int>("a")));
    expected = "a -> b -> c -> a";
  }
  SECTION("a key on itself") {
    g.add(weft::task("self", inc, weft::ref<int>("self")));
    expected = "self -> self";
  }
  SECTION("a cycle behind a tail names only the cycle") {
    g.add(weft::task("tail", inc, weft::ref<int>("loop-1")));
    g.add(weft::task("loop-1", inc, weft::ref<int>("loop-2")));
    g.add(weft::task("loop-2", add, weft::ref<int>("leaf"), weft::ref<int>("loop-1")));
    g.add(weft::literal("leaf", 0));
    expected = "loop-1 -> loop-2 -> loop-1";
  }
  INFO(expected);
  try {
    g.validate();
    FAIL("no exception");
  } catch (const weft::GraphError& e) {
    CHECK(e.id() == "graph.cycle");
    CHECK_THAT(e.what(), Contains(expected));
    CHECK_THAT(e.what(), !Contains("tail") && !Contains("leaf"));
  }
  try {
    weft::get(g, {g.keys().front()});
    FAIL("no exception");
  } catch (const weft::GraphError& e) {
    CHECK(e.id() == "graph.cycle");
  }
}

TEST_CASE("cull keeps only what the keys need", "[graph]") {
  weft::Graph g = small_graph();
  g.add(weft::task("w", twice, weft::ref<int>("x")));
  g.add(weft::literal("unrelated", 7));

  weft::Graph y = g.cull({"y"});
  CHECK(y.size() == 2);
  CHECK(y.contains("y"));
  CHECK(y.contains("x"));
  CHECK_FALSE(y.contains("z"));
  CHECK_FALSE(y.contains("w"));
  CHECK(y.at("y") == g.at("y"));  // the same tasks, shared
  CHECK_NOTHROW(y.validate());

  weft::Graph zw = g.cull({"z", "w"});
  CHECK(zw.size() == 4);
  CHECK_FALSE(zw.contains("unrelated"));

  CHECK(g.cull({}).size() == 0);
  CHECK(g.size() == 5);  // cull does not change the graph

  try {
    (void)g.cull({"y", "nope"});
    FAIL("no exception");
  } catch (const weft::GraphError& e) {
    CHECK(e.id() == "graph.missing-key");
    CHECK_THAT(e.what(), Contains("'nope'"));
  }
}

TEST_CASE("get computes the requested keys in order on both schedulers", "[graph]") {
  auto sched = GENERATE(weft::scheduler::sync, weft::scheduler::threads);
  auto optimize = GENERATE(true, false);
  INFO(weft::to_string(sched.kind) << (optimize ? ", optimised" : ", not optimised"));
  weft::ComputeOptions options = sched;
  options.optimize_graph = optimize;
  weft::ComputeStats stats;
  options.stats = &stats;

  weft::Graph g = small_graph();
  g.add(weft::task("never-run", explode, weft::ref<int>("x")));

  std::vector<weft::Value> out = weft::get(g, {"z", "y", "x"}, options);
  REQUIRE(out.size() == 3);
  CHECK(out[0].get<int>() == 3);
  CHECK(out[1].get<int>() == 2);
  CHECK(out[2].get<int>() == 1);
  CHECK(stats.tasks_in_graph == 3);  // "never-run" is not needed

  out = weft::get(g, {"y"}, options);
  REQUIRE(out.size() == 1);
  CHECK(out[0].get<int>() == 2);
  CHECK(stats.tasks_in_graph == 2);

  out = weft::get(g, {"y", "y"}, options);
  REQUIRE(out.size() == 2);
  CHECK(out[0].get<int>() == 2);
  CHECK(out[1].get<int>() == 2);

  // A wide graph: 200 leaves summed.
  weft::Graph wide;
  std::vector<weft::Ref<int>> leaves;
  for (int i = 0; i < 200; ++i) {
    std::string key = "leaf-" + std::to_string(i);
    wide.add(weft::task(key, twice, i));
    leaves.push_back(weft::ref<int>(key));
  }
  wide.add(weft::task("total", sum, leaves));
  out = weft::get(wide, {"total"}, options);
  CHECK(out.at(0).get<int>() == 200 * 199);  // 2 * (0 + ... + 199)
}

TEST_CASE("get of a key that is not in the graph is graph.missing-key", "[graph]") {
  weft::Graph g = small_graph();
  CHECK_THROWS_AS(weft::get(g, {"y", "nope"}), weft::GraphError);
  try {
    weft::get(g, {"y", "nope"});
    FAIL("no exception");
  } catch (const weft::GraphError& e) {
    CHECK(e.id() == "graph.missing-key");
    CHECK_THAT(e.what(), Contains("'nope'"));
  }
}

TEST_CASE("a ref of the wrong type fails its task with a TaskError", "[graph]") {
  auto sched = GENERATE(weft::scheduler::sync, weft::scheduler::threads);
  weft::Graph g;
  g.add(weft::literal("x", 1));
  g.add(weft::task("halved", half, weft::ref<double>("x")));  // x is an int
  CHECK_THROWS_AS(weft::get(g, {"halved"}, sched), weft::TaskError);
  try {
    weft::get(g, {"halved"}, sched);
    FAIL("no exception");
  } catch (const weft::TaskError& e) {
    CHECK(e.id() == "task.failed");
    CHECK(e.key() == "halved");
    CHECK_THAT(e.what(), Contains("'halved'"));
    CHECK_THAT(e.what(), Contains("'int'"));
    CHECK_THAT(e.what(), Contains("'double'"));
    CHECK_THAT(e.original_message(), Contains("type.wrong-type"));
    CHECK_THROWS_AS(e.rethrow_original(), weft::TypeError);
  }
}

TEST_CASE("an exception in a task becomes a TaskError with the original inside", "[graph]") {
  auto sched = GENERATE(weft::scheduler::sync, weft::scheduler::threads);
  weft::Graph g = small_graph();
  g.add(weft::task("bad", explode, weft::ref<int>("y")));
  g.add(weft::task("after-bad", inc, weft::ref<int>("bad")));
  try {
    weft::get(g, {"after-bad"}, sched);
    FAIL("no exception");
  } catch (const weft::TaskError& e) {
    CHECK(e.id() == "task.failed");
    CHECK(e.key() == "bad");
    CHECK(e.original_message() == "boom from explode");
    CHECK_THAT(e.what(), Contains("'bad'") && Contains("boom from explode"));
    CHECK_THROWS_AS(e.rethrow_original(), std::runtime_error);
    CHECK_THROWS_WITH(e.rethrow_original(), "boom from explode");
  }
}

TEST_CASE("Delayed::graph holds every task once", "[graph][delayed]") {
  auto a = weft::delayed(inc)(1);
  auto b = weft::delayed(inc)(a);
  auto c = weft::delayed(twice)(a);
  auto d = weft::delayed(add)(b, c);

  weft::Graph g = d.graph();
  CHECK(g.size() == 4);  // a is shared by b and c, and counted once
  for (const auto& k : {a.key(), b.key(), c.key(), d.key()}) CHECK(g.contains(k));
  CHECK(g.dependencies(d.key()) == std::vector<weft::Key>{b.key(), c.key()});
  CHECK(g.dependencies(b.key()) == std::vector<weft::Key>{a.key()});
  CHECK(g.dependencies(a.key()).empty());
  CHECK_NOTHROW(g.validate());
  CHECK(weft::get(g, {d.key()}).at(0).get<int>() == 7);  // (1+1+1) + 2*(1+1)

  // Ten users of one shared input, gathered by one task.
  std::vector<weft::Delayed<int>> parts;
  for (int i = 0; i < 10; ++i) parts.push_back(weft::delayed(add)(a, i));
  auto total = weft::delayed(sum)(parts);
  weft::Graph tg = total.graph();
  CHECK(tg.size() == 12);
  CHECK(tg.dependencies(total.key()).size() == 10);
  CHECK(total.compute(weft::scheduler::sync) == 10 * 2 + 45);

  // Equal calls are one task.
  auto twin = weft::delayed(add)(weft::delayed(inc)(1), weft::delayed(inc)(1));
  CHECK(twin.graph().size() == 2);
  CHECK(twin.graph().dependencies(twin.key()) == std::vector<weft::Key>{a.key()});
}

TEST_CASE("to_dot writes one box per key and one edge per dependency", "[graph]") {
  weft::Graph g = small_graph();
  std::ostringstream out;
  g.to_dot(out);
  const std::string dot = out.str();
  INFO(dot);
  CHECK_THAT(dot, Contains("digraph"));
  CHECK(dot.back() == '\n');
  CHECK(count(dot, "shape=box") == 3);
  CHECK(count(dot, "shape=circle") == 3);
  for (const char* key : {"x", "y", "z"}) CHECK_THAT(dot, Contains(std::string("label=\"") + key + "\""));
  // Keys in insertion order: x is r0, y is r1, z is r2.
  CHECK_THAT(dot, Contains("r0 -> f1;"));
  CHECK_THAT(dot, Contains("r0 -> f2;"));
  CHECK_THAT(dot, Contains("r1 -> f2;"));
  CHECK(count(dot, " -> ") == 3 + 3);  // function -> result, plus the dependencies

  SECTION("quotes in keys are escaped") {
    weft::Graph q;
    q.add(weft::literal("say \"hi\"", 1));
    std::ostringstream qout;
    q.to_dot(qout);
    CHECK_THAT(qout.str(), Contains("label=\"say \\\"hi\\\"\""));
  }
  SECTION("chunk and token keys are labelled with their string form") {
    weft::Graph k;
    weft::Key chunk("x", weft::Token{1, 2}, {0, 1});
    k.add(weft::literal(chunk, 1));
    std::ostringstream kout;
    k.to_dot(kout);
    CHECK_THAT(kout.str(), Contains("label=\"" + chunk.str() + "\""));
    CHECK_THAT(kout.str(), Contains("label=\"x\""));
  }
}

TEST_CASE("to_dot to a file writes it whole or not at all", "[graph]") {
  weft::Graph g = small_graph();
  TempDir dir;

  SECTION("a writable folder") {
    fs::path path = dir.path() / "graph.dot";
    g.to_dot(path.string());
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::ostringstream expected;
    g.to_dot(expected);
    CHECK(text.str() == expected.str());
    CHECK(entries(dir.path()) == std::vector<fs::path>{"graph.dot"});
  }
  SECTION("a missing folder") {
    fs::path path = dir.path() / "missing" / "graph.dot";
    CHECK_THROWS_AS(g.to_dot(path.string()), weft::IoError);
    try {
      g.to_dot(path.string());
      FAIL("no exception");
    } catch (const weft::IoError& e) {
      CHECK(e.id() == "io.cannot-write");
      CHECK_THAT(e.what(), Contains(path.string()));
      CHECK_THAT(e.what(), Contains(std::strerror(ENOENT)));  // the system's reason
    }
    CHECK(entries(dir.path()).empty());
  }
  SECTION("the path is a folder") {
    fs::path path = dir.path() / "folder";
    fs::create_directory(path);
    try {
      g.to_dot(path.string());
      FAIL("no exception");
    } catch (const weft::IoError& e) {
      CHECK(e.id() == "io.cannot-write");
      CHECK_THAT(e.what(), Contains(path.string()));
      CHECK_THAT(e.what(), Contains(std::strerror(EISDIR)));
    }
    CHECK(fs::is_directory(path));
    CHECK(fs::is_empty(path));
    CHECK(entries(dir.path()) == std::vector<fs::path>{"folder"});  // no temporary file left
  }
  SECTION("Delayed::to_dot writes the graph of the value") {
    auto d = weft::delayed(inc)(weft::delayed(inc)(1));
    fs::path path = dir.path() / "delayed.dot";
    d.to_dot(path.string());
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    CHECK(count(text.str(), "shape=box") == 2);
    CHECK_THAT(text.str(), Contains(d.key().str()));
  }
}

TEST_CASE("add_with_dependencies adds every task a task reaches", "[graph]") {
  auto a = weft::delayed(inc)(1);
  auto d = weft::delayed(add)(weft::delayed(inc)(a), weft::delayed(twice)(a));
  weft::Graph g;
  g.add_with_dependencies(d.task());
  CHECK(g.size() == 4);
  CHECK(g.contains(a.key()));
  CHECK(g.keys().front() == d.key());
  g.add_with_dependencies(d.task());
  g.add_with_dependencies(a.task());
  CHECK(g.size() == 4);

  // ref(key) names a key but not a task: only the task itself is added.
  weft::Graph h;
  h.add_with_dependencies(weft::task("y", inc, weft::ref<int>("x")));
  CHECK(strs(h.keys()) == std::vector<std::string>{"y"});
  try {
    h.validate();
    FAIL("no exception");
  } catch (const weft::GraphError& e) {
    CHECK(e.id() == "graph.missing-dependency");
  }
}

TEST_CASE("merge adds the other graph's tasks, keeping existing keys", "[graph]") {
  weft::Graph g;
  g.add(weft::literal("x", 1));
  g.add(weft::task("y", inc, weft::ref<int>("x")));
  weft::Graph other;
  other.add(weft::literal("x", 100));
  other.add(weft::task("z", add, weft::ref<int>("x"), weft::ref<int>("y")));

  weft::TaskPtr x = g.at("x");
  g.merge(other);
  CHECK(strs(g.keys()) == std::vector<std::string>{"x", "y", "z"});
  CHECK(g.at("x") == x);
  CHECK(g.at("z") == other.at("z"));
  CHECK(other.size() == 2);
  CHECK_NOTHROW(g.validate());
  CHECK(weft::get(g, {"z"}).at(0).get<int>() == 3);

  weft::Graph empty;
  empty.merge(g);
  CHECK(empty.keys() == g.keys());
}
