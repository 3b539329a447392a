// weft/delayed.hpp - lazy function calls (dask.delayed).
//
//   auto parts = std::vector<weft::Delayed<double>>{};
//   for (int i = 0; i < 100; ++i) parts.push_back(weft::delayed(load)(i));
//   double total = weft::delayed(combine)(parts).compute();
//
// delayed(f)(args...) records a task instead of calling f. Arguments may be
// values, Delayed<T>, or vectors/arrays/tuples/pairs of them; the task
// depends on every Delayed it finds. The key is "<name>-<token>", the token a
// hash of the function's identity and the arguments, so the same call gives
// the same key in every run (weft's delayed is pure by default, where Dask's
// is not: pass {.pure = false} for functions with side effects or
// randomness). A function's identity is its symbol (function pointers) or
// its type (lambdas and function objects), never an address, so keys do not
// depend on where the binary was loaded.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weft/compute.hpp"
#include "weft/graph.hpp"
#include "weft/key.hpp"
#include "weft/task.hpp"
#include "weft/tokenize.hpp"
#include "weft/value.hpp"

namespace weft {

struct DelayedOptions {
  /// Key prefix; default: the function's name ("inc"), or "lambda".
  std::string_view name = {};
  /// Same arguments give the same key (deduplicated). false: every call is new.
  bool pure = true;
  /// Inline this task into its dependents instead of scheduling it (getitem-like).
  bool cheap = false;
};

namespace detail {
/// Where a function's key prefix and identity token come from.
struct FunctionIdentity {
  const InternedName* name;
  Token token;
};
/// For function pointers: the exported symbol, else the symbol in the
/// object's full symbol table plus the object file and offset (static
/// functions), else the file and offset alone (stripped). Cached per pointer.
const FunctionIdentity& function_identity(const void* fn);
/// For lambdas and function objects: the type's mangled name.
FunctionIdentity class_identity(const std::type_info& type);
/// Key prefix for a literal of this type: "int", "vector", ...
const InternedName* literal_name(const std::type_info& type);

template <class F>
const FunctionIdentity& identity_of(const F& fn) {
  if constexpr (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>) {
    return function_identity(reinterpret_cast<const void*>(fn));
  } else {
    static const FunctionIdentity id = class_identity(typeid(F));
    return id;
  }
}

/// Function pointers, functions, and classes with an operator() (an empty
/// class counts too, for generic lambdas and std::plus<>).
template <class D>
concept CallableType = std::is_function_v<std::remove_pointer_t<D>> ||
                       requires { &D::operator(); } || (std::is_class_v<D> && std::is_empty_v<D>);

template <class T>
struct IsDelayed : std::false_type {};
template <class T>
struct IsDelayed<Delayed<T>> : std::true_type {};
}  // namespace detail

/// A lazily computed T: a handle on the task that makes it.
template <class T>
class Delayed {
 public:
  using value_type = T;

  explicit Delayed(TaskPtr task) : task_(std::move(task)) {}

  const Key& key() const noexcept { return task_->key(); }
  const TaskPtr& task() const noexcept { return task_; }
  TaskRef ref() const { return TaskRef{task_->key(), task_}; }

  /// Runs the graph and returns the result.
  T compute(const ComputeOptions& options = {}) const {
    if constexpr (std::is_void_v<T>) {
      weft::compute(options, *this);
    } else {
      return std::get<0>(weft::compute(options, *this));
    }
  }
  /// Runs the graph and returns a Delayed whose task holds the result.
  Delayed persist(const ComputeOptions& options = {}) const {
    return std::get<0>(weft::persist(options, *this));
  }
  /// The tasks this value needs, as a Graph.
  Graph graph() const { return graph_of(*this); }
  /// Writes a Graphviz picture of graph() to `path`.
  void to_dot(const std::string& path) const { graph().to_dot(path); }

 private:
  TaskPtr task_;
};

template <class T>
struct CollectionTraits<Delayed<T>> {
  using Result = std::conditional_t<std::is_void_v<T>, None, T>;
  static void roots(const Delayed<T>& d, std::vector<TaskRef>& out) { out.push_back(d.ref()); }
  static Result finalize(const Delayed<T>&, std::span<Value> values) {
    return values[0].take<Result>();
  }
  static Delayed<T> rebuild(const Delayed<T>&, std::span<TaskPtr> held) { return Delayed<T>(std::move(held[0])); }
};

template <class T>
struct Tokenizer<Delayed<T>> {
  static void apply(Hasher& h, const Delayed<T>& d) { tokenize_into(h, d.key()); }
};

/// A function wrapped by delayed(): calling it records a task.
template <class F>
class DelayedFunction {
 public:
  DelayedFunction(F fn, DelayedOptions options) : fn_(std::move(fn)), options_(options) {}

  template <class... U>
  auto operator()(U&&... args) const {
    using R = std::decay_t<detail::CallResult<F, std::decay_t<U>...>>;
    using Result = std::conditional_t<std::is_same_v<R, void>, void, R>;
    const detail::FunctionIdentity& id = detail::identity_of(fn_);
    Hasher h;
    tokenize_into(h, id.token);
    if constexpr (!std::is_empty_v<F> && !std::is_pointer_v<F>) tokenize_into(h, fn_);
    (tokenize_into(h, args), ...);
    Token token = options_.pure ? h.digest() : detail::fresh_token();
    const detail::InternedName* name =
        options_.name.empty() ? id.name : detail::intern(options_.name);
    return Delayed<Result>(detail::make_call_task(Key(name, token), options_.cheap, fn_,
                                                  std::forward<U>(args)...));
  }

 private:
  F fn_;
  DelayedOptions options_;
};

/// delayed(f): a function whose calls build tasks. delayed(value): a
/// Delayed<T> holding a literal (its key is "<type>-<token of value>").
/// delayed(d) for a Delayed d returns d.
template <class F>
auto delayed(F&& fn_or_value, DelayedOptions options = {}) {
  using D = std::decay_t<F>;
  if constexpr (detail::IsDelayed<D>::value) {
    return D(std::forward<F>(fn_or_value));
  } else if constexpr (detail::CallableType<D>) {
    return DelayedFunction<D>(std::forward<F>(fn_or_value), options);
  } else {
    Token token = options.pure ? tokenize(fn_or_value) : detail::fresh_token();
    Key key = options.name.empty() ? Key(detail::literal_name(typeid(D)), token)
                                   : Key(options.name, token);
    return Delayed<D>(std::make_shared<ConstantTask>(
        std::move(key), Value::of(std::forward<F>(fn_or_value))));
  }
}

// Arithmetic on Delayed values builds tasks, as Dask's Delayed operators do.
namespace detail {
template <class A, class B>
concept DelayedOperands = IsDelayed<std::decay_t<A>>::value || IsDelayed<std::decay_t<B>>::value;
}  // namespace detail

#define WEFT_DELAYED_BINARY_OPERATOR(op, functor, label)                         \
  template <class A, class B>                                                     \
    requires detail::DelayedOperands<A, B>                                        \
  auto operator op(A&& a, B&& b) {                                                \
    return delayed(functor<>{}, {.name = label})(std::forward<A>(a), std::forward<B>(b)); \
  }
WEFT_DELAYED_BINARY_OPERATOR(+, std::plus, "add")
WEFT_DELAYED_BINARY_OPERATOR(-, std::minus, "sub")
WEFT_DELAYED_BINARY_OPERATOR(*, std::multiplies, "mul")
WEFT_DELAYED_BINARY_OPERATOR(/, std::divides, "truediv")
#undef WEFT_DELAYED_BINARY_OPERATOR

template <class T>
auto operator-(const Delayed<T>& a) {
  return delayed(std::negate<>{}, {.name = "neg"})(a);
}

}  // namespace weft
