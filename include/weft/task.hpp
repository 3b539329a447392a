// weft/task.hpp - a task: a function plus arguments that may reference other keys.
//
// A Task is immutable once made and shared (TaskPtr) between the collections
// and graphs that contain it. Its dependencies are derived from its arguments:
// every Delayed<T> or ref<T>(key) inside them (also inside vectors, arrays,
// tuples and pairs) becomes a TaskRef. A TaskRef made by delayed() points at
// the task itself; one made by ref(key) names only the key and is resolved by
// the Graph it is added to.
//
// Schedulers call run() with the dependencies' results, in dependencies()
// order, and never see argument types: the typed call lives in CallTask.
// encode() writes a task as bytes for another rank of the same binary
// (weft/detail/task_wire.hpp has the format and detail::decode_task).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weft/detail/task_wire.hpp"
#include "weft/key.hpp"
#include "weft/tokenize.hpp"
#include "weft/value.hpp"

namespace weft {

class Task;
using TaskPtr = std::shared_ptr<const Task>;

/// A dependency: the key, and the task when it is known at construction.
struct TaskRef {
  Key key;
  TaskPtr task;  ///< null for ref(key): the Graph resolves it by key
};

class Task {
 public:
  virtual ~Task() = default;
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  const Key& key() const noexcept { return key_; }
  std::span<const TaskRef> dependencies() const noexcept { return deps_; }
  /// Cheap tasks (getitem-like) are inlined into their dependents by the optimiser.
  bool cheap() const noexcept { return cheap_; }

  /// Runs the task; inputs[i] is the result of dependencies()[i].
  virtual Value run(std::span<const Value* const> inputs) const = 0;
  /// The result's C++ type, when the task knows it statically.
  virtual const std::type_info* result_type() const noexcept { return nullptr; }
  /// Appends what this task's type needs to rebuild it on another rank (the
  /// payload; detail::encode_task adds the type id, key and flags). The base
  /// throws TypeError "type.not-serializable" naming the task type; so do
  /// CallTask and ConstantTask for a function or value that cannot travel.
  virtual void encode(std::vector<std::byte>& out) const;
  /// A result that exists outside the graph (a future's): the planner never
  /// fuses or inlines it into its dependents.
  virtual bool external() const noexcept { return false; }
  /// A collective step (weft/collective.hpp): it runs on every worker rank at once.
  virtual bool collective() const noexcept { return false; }
  /// Collective steps: turns the per-rank results (in rank order) into the
  /// one result dependents see. The base throws TypeError "type.not-collective".
  virtual Value combine(std::vector<Value>&& parts) const;
  /// A partitioned collective step: its first N dependencies are parts, each
  /// read only on the worker rank holding it (weft/collective.hpp); 0 otherwise.
  virtual std::size_t partitioned_inputs() const noexcept { return 0; }

 protected:
  Task(Key key, bool cheap) : key_(std::move(key)), cheap_(cheap) {}
  /// Derived tasks keep their dependencies in their own storage (in the same
  /// allocation as the task where the count is known at compile time).
  void set_dependencies(std::span<const TaskRef> deps) noexcept { deps_ = deps; }

 private:
  Key key_;
  std::span<const TaskRef> deps_;
  bool cheap_;
};

/// A reference to another task's result by key, for hand-written graphs
/// (the string keys of a Dask graph dict): `weft::task("y", inc, weft::ref<int>("x"))`.
template <class T>
struct Ref {
  Key key;
};
template <class T>
Ref<T> ref(Key key) {
  return Ref<T>{std::move(key)};
}

template <class T>
class Delayed;

struct CollectiveContext;

namespace detail {

/// The placeholder argument of a collective step (weft/collective.hpp).
struct CollectiveSlot {};
/// The context of the collective step this thread is running on a worker
/// rank; null elsewhere (local schedulers run a collective as one rank).
const CollectiveContext* running_collective() noexcept;
/// How many dependencies of an argument are parts of a partitioned
/// collective step (weft/collective.hpp specialises it for its parts list).
template <class A>
struct PartitionedArg {
  template <class S>
  static std::size_t count(const S&) noexcept { return 0; }
};

/// The number of dependencies of an argument type when it is known at
/// compile time; kDynamicDeps for containers of Delayed.
inline constexpr std::size_t kDynamicDeps = SIZE_MAX;

/// Collects the dependencies of a task while its arguments are stored, into
/// a std::array (count known at compile time) or a std::vector.
template <class Storage>
struct DepCollector {
  Storage deps{};
  std::uint32_t count = 0;
  std::uint32_t add(TaskRef ref) {
    if constexpr (requires { deps.push_back(std::move(ref)); }) deps.push_back(std::move(ref));
    else deps[count] = std::move(ref);
    return count++;
  }
};

using Inputs = std::span<const Value* const>;

/// How an argument of type A is stored in a task and turned back into what
/// the function receives. Plain values are stored as they are.
template <class A>
struct ArgTraits {
  using Stored = A;
  static constexpr bool has_deps = false;
  static constexpr std::size_t static_deps = 0;
  template <class U, class C>
  static Stored store(U&& a, C&) {
    return std::forward<U>(a);
  }
  static const Stored& load(const Stored& s, Inputs) { return s; }
};

template <class T>
struct DepSlot {
  std::uint32_t index;
};

template <class T>
TaskRef dependency_ref(const Delayed<T>& d) {
  return d.ref();
}
template <class T>
TaskRef dependency_ref(const Ref<T>& r) {
  return TaskRef{r.key, nullptr};
}

/// Delayed<T> and ref<T>(key) arguments: a dependency, read back as const T&.
template <class T>
struct DependencyArgTraits {
  using Stored = DepSlot<T>;
  static constexpr bool has_deps = true;
  static constexpr std::size_t static_deps = 1;
  template <class A, class C>
  static Stored store(const A& a, C& c) { return {c.add(dependency_ref(a))}; }
  static const T& load(const Stored& s, Inputs in) { return in[s.index]->template get<T>(); }
};
template <class T>
struct ArgTraits<Delayed<T>> : DependencyArgTraits<T> {};
template <class T>
struct ArgTraits<Ref<T>> : DependencyArgTraits<T> {};

template <class E>
struct ArgTraits<std::vector<E>> {
  using Elem = ArgTraits<E>;
  static constexpr bool has_deps = Elem::has_deps;
  static constexpr std::size_t static_deps = has_deps ? kDynamicDeps : 0;
  using Stored = std::conditional_t<has_deps, std::vector<typename Elem::Stored>, std::vector<E>>;
  template <class U, class C>
  static Stored store(U&& v, C& c) {
    if constexpr (has_deps) {
      Stored out;
      out.reserve(v.size());
      for (const auto& e : v) out.push_back(Elem::store(e, c));
      return out;
    } else {
      return std::forward<U>(v);
    }
  }
  static decltype(auto) load(const Stored& s, Inputs in) {
    if constexpr (has_deps) {
      using Loaded = std::remove_cvref_t<decltype(Elem::load(s[0], in))>;
      std::vector<Loaded> out;
      out.reserve(s.size());
      for (const auto& e : s) out.push_back(Elem::load(e, in));
      return out;
    } else {
      return static_cast<const Stored&>(s);
    }
  }
};

template <class E, std::size_t N>
struct ArgTraits<std::array<E, N>> {
  using Elem = ArgTraits<E>;
  static constexpr bool has_deps = Elem::has_deps;
  static constexpr std::size_t static_deps =
      Elem::static_deps == kDynamicDeps ? kDynamicDeps : Elem::static_deps * N;
  using Stored = std::array<typename Elem::Stored, N>;
  template <class U, class C>
  static Stored store(U&& v, C& c) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return Stored{Elem::store(v[I], c)...};
    }(std::make_index_sequence<N>{});
  }
  static decltype(auto) load(const Stored& s, Inputs in) {
    if constexpr (has_deps) {
      using Loaded = std::remove_cvref_t<decltype(Elem::load(s[0], in))>;
      return [&]<std::size_t... I>(std::index_sequence<I...>) {
        return std::array<Loaded, N>{Elem::load(s[I], in)...};
      }(std::make_index_sequence<N>{});
    } else {
      return static_cast<const Stored&>(s);
    }
  }
};

template <template <class...> class Tuple, class... E>
struct TupleArgTraits {
  static constexpr bool has_deps = (ArgTraits<E>::has_deps || ...);
  static constexpr std::size_t static_deps =
      ((ArgTraits<E>::static_deps == kDynamicDeps) || ...) ? kDynamicDeps
                                                            : (std::size_t{0} + ... + ArgTraits<E>::static_deps);
  using Stored = Tuple<typename ArgTraits<E>::Stored...>;
  template <class U, class C>
  static Stored store(U&& v, C& c) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return Stored{ArgTraits<E>::store(std::get<I>(v), c)...};
    }(std::index_sequence_for<E...>{});
  }
  static decltype(auto) load(const Stored& s, Inputs in) {
    if constexpr (has_deps) {
      return [&]<std::size_t... I>(std::index_sequence<I...>) {
        return Tuple<std::remove_cvref_t<decltype(ArgTraits<E>::load(std::get<I>(s), in))>...>{
            ArgTraits<E>::load(std::get<I>(s), in)...};
      }(std::index_sequence_for<E...>{});
    } else {
      return static_cast<const Stored&>(s);
    }
  }
};
template <class... E>
struct ArgTraits<std::tuple<E...>> : TupleArgTraits<std::tuple, E...> {};
template <class A, class B>
struct ArgTraits<std::pair<A, B>> : TupleArgTraits<std::pair, A, B> {};

template <class A>
using Loaded = decltype(ArgTraits<std::decay_t<A>>::load(
    std::declval<const typename ArgTraits<std::decay_t<A>>::Stored&>(), Inputs{}));

/// The result type of calling F on arguments A... once dependencies are loaded.
template <class F, class... A>
using CallResult = std::invoke_result_t<const F&, Loaded<A>...>;

/// Wraps a call's result in a Value (void results become weft::None).
template <class R, class Call>
Value call_to_value(Call&& call) {
  if constexpr (std::is_void_v<R>) {
    call();
    return Value::make<None>();
  } else {
    return Value::of(call());
  }
}

}  // namespace detail

/// A task that calls F with stored arguments; made by delayed() and task().
template <class F, class... A>
class CallTask final : public Task {
 public:
  using Result = detail::CallResult<F, A...>;
  using StoredArgs = std::tuple<typename detail::ArgTraits<A>::Stored...>;
  static constexpr std::size_t kStaticDeps = detail::TupleArgTraits<std::tuple, A...>::static_deps;
  /// Where the dependencies live: inline when their number is fixed.
  using Deps = std::conditional_t<kStaticDeps == detail::kDynamicDeps, std::vector<TaskRef>,
                                  std::array<TaskRef, kStaticDeps == detail::kDynamicDeps ? 0 : kStaticDeps>>;
  /// Whether encode() can send this task to another rank.
  static constexpr bool kSerializable =
      detail::FunctionWire<F>::serializable &&
      (detail::ArgWire<typename detail::ArgTraits<A>::Stored>::serializable && ...);

  CallTask(Key key, Deps deps, bool cheap, F fn, StoredArgs args)
      : Task(std::move(key), cheap), deps_(std::move(deps)), fn_(std::move(fn)), args_(std::move(args)) {
    set_dependencies(deps_);
    // Naming the registration registers the decoder before main() in every
    // binary that makes this task type.
    if constexpr (kSerializable) static_cast<void>(detail::TaskRegistration<CallTask>::done);
  }

  /// A collective step takes the context as its first argument.
  static constexpr bool kCollective = (std::is_same_v<A, detail::CollectiveSlot> || ...);
  using Part = std::conditional_t<std::is_void_v<Result>, None, std::remove_cvref_t<Result>>;

  Value run(std::span<const Value* const> inputs) const override {
    Value v = detail::call_to_value<Result>([&]() -> decltype(auto) {
      return [&]<std::size_t... I>(std::index_sequence<I...>) -> decltype(auto) {
        return std::invoke(fn_, detail::ArgTraits<A>::load(std::get<I>(args_), inputs)...);
      }(std::index_sequence_for<A...>{});
    });
    // On worker ranks each rank's part goes to combine(); elsewhere the step
    // ran as the only rank.
    if constexpr (kCollective)
      if (!detail::running_collective()) return Value::of(std::vector<Part>{v.template take<Part>()});
    return v;
  }
  const std::type_info* result_type() const noexcept override {
    if constexpr (kCollective) return &typeid(std::vector<Part>);
    else return &typeid(Part);
  }
  bool collective() const noexcept override { return kCollective; }
  std::size_t partitioned_inputs() const noexcept override {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return (std::size_t{0} + ... + detail::PartitionedArg<A>::count(std::get<I>(args_)));
    }(std::index_sequence_for<A...>{});
  }
  Value combine(std::vector<Value>&& parts) const override {
    if constexpr (kCollective) {
      std::vector<Part> all;
      all.reserve(parts.size());
      for (Value& p : parts) all.push_back(p.template take<Part>());
      return Value::of(std::move(all));
    } else {
      return Task::combine(std::move(parts));
    }
  }
  void encode(std::vector<std::byte>& out) const override {
    if constexpr (!kSerializable) {
      detail::refuse_first<detail::FunctionWire<F>,
                           detail::ArgWire<typename detail::ArgTraits<A>::Stored>...>(*this);
    } else {
      detail::FunctionWire<F>::encode(out, fn_);
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (detail::ArgWire<typename detail::ArgTraits<A>::Stored>::encode(out, std::get<I>(args_)), ...);
      }(std::index_sequence_for<A...>{});
    }
  }

 private:
  friend struct detail::TaskRegistration<CallTask>;
  static TaskPtr decode_payload(detail::TaskHeader&& header, detail::EncodingReader& payload) {
    detail::TaskReader in{payload, header.dependencies};
    F fn = detail::FunctionWire<F>::decode(in);
    // A braced list evaluates its elements in order.
    StoredArgs args{detail::ArgWire<typename detail::ArgTraits<A>::Stored>::decode(in)...};
    in.check_slots();
    Deps deps{};
    if constexpr (kStaticDeps == detail::kDynamicDeps) deps.resize(header.dependencies);
    return std::make_shared<CallTask>(std::move(header.key), std::move(deps), header.cheap,
                                      std::move(fn), std::move(args));
  }

  Deps deps_;
  F fn_;
  StoredArgs args_;
};

/// A task whose result is a stored value: literals, and persisted results.
class ConstantTask final : public Task {
 public:
  ConstantTask(Key key, Value value) : Task(std::move(key), false), value_(std::move(value)) {}
  Value run(std::span<const Value* const>) const override { return value_.clone(); }
  const std::type_info* result_type() const noexcept override { return value_.type()->type; }
  /// The value through weft::encode, its buffers copied in.
  void encode(std::vector<std::byte>& out) const override;
  const Value& value() const noexcept { return value_; }

 private:
  Value value_;
};

namespace detail {
template <class F, class... U>
TaskPtr make_call_task(Key key, bool cheap, F&& fn, U&&... args) {
  using Fn = std::decay_t<F>;
  using T = CallTask<Fn, std::decay_t<U>...>;
  DepCollector<typename T::Deps> deps;
  if constexpr (T::kStaticDeps == kDynamicDeps) deps.deps.reserve(sizeof...(U));
  typename T::StoredArgs stored{ArgTraits<std::decay_t<U>>::store(std::forward<U>(args), deps)...};
  return std::make_shared<T>(std::move(key), std::move(deps.deps), cheap, std::forward<F>(fn),
                             std::move(stored));
}
}  // namespace detail

/// A task with a key you choose, for hand-written graphs (a Dask graph
/// dict's `key: (func, *args)`). Arguments may be values or ref<T>(key).
template <class F, class... U>
TaskPtr task(Key key, F&& fn, U&&... args) {
  return detail::make_call_task(std::move(key), false, std::forward<F>(fn), std::forward<U>(args)...);
}

/// A task whose result is `value` (a Dask graph dict's `key: literal`).
template <class T>
TaskPtr literal(Key key, T&& value) {
  return std::make_shared<ConstantTask>(std::move(key), Value::of(std::forward<T>(value)));
}

}  // namespace weft
