// weft/value.hpp - a task's result, type-erased.
//
// Schedulers move results around without knowing their types; a Value holds
// any movable C++ object with a pointer to a static ValueType describing it.
// Objects up to 32 bytes that move without throwing (numbers, std::vector,
// std::string, small structs) live inline, so most tasks allocate nothing for
// their result. Reading a Value as the wrong type is a TypeError naming both.
//
// nbytes() is weft's equivalent of dask.sizeof: what the result costs in
// memory, used by memory accounting and (later) spilling. Specialise
// weft::SizeOf<T> or give T a member `std::size_t nbytes() const` to refine it.
//
// Each ValueType also carries T's encoder and decoder (weft/serialize.hpp),
// for sending results between ranks.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

#include "weft/serialize.hpp"

namespace weft {

namespace detail {
template <class T>
concept TrivialElementContainer = std::ranges::sized_range<const T> && requires(const T& v) {
  v.capacity();
} && std::is_trivially_copyable_v<std::ranges::range_value_t<const T>>;
}  // namespace detail

/// Bytes a value occupies, including what it owns on the heap (Dask's sizeof).
template <class T>
struct SizeOf {
  static std::size_t apply(const T& v) {
    if constexpr (requires { { v.nbytes() } -> std::convertible_to<std::size_t>; }) {
      return static_cast<std::size_t>(v.nbytes());
    } else if constexpr (std::is_same_v<T, std::string>) {
      return sizeof(T) + v.capacity();
    } else if constexpr (detail::TrivialElementContainer<T>) {
      return sizeof(T) + v.capacity() * sizeof(std::ranges::range_value_t<const T>);
    } else if constexpr (std::ranges::input_range<const T> &&
                         !std::is_trivially_copyable_v<T>) {
      std::size_t total = sizeof(T);
      for (const auto& item : v)
        total += SizeOf<std::remove_cvref_t<decltype(item)>>::apply(item);
      return total;
    } else {
      return sizeof(T);
    }
  }
};

/// What a Value needs to know about the type it holds; one static instance per type.
struct ValueType {
  const std::type_info* type;
  bool stored_inline;
  void (*destroy)(void* object);
  void (*relocate)(void* dst, void* src);         // inline storage only
  void (*copy)(void* dst, const void* src);       // nullptr when the type is not copyable
  void* (*heap_copy)(const void* src);            // nullptr when the type is not copyable
  std::size_t (*nbytes)(const void* object);
  detail::TypeId type_id;                          // same on every rank (see serialize.hpp)
  void (*encode)(const Value& v, Encoded& out);    // nullptr when the type is not serialisable
  Value (*decode)(std::span<const std::byte> payload, EncodedBuffers buffers);  // likewise

  bool serializable() const noexcept { return encode != nullptr; }
};

/// The result of a task with no value (a function returning void).
using None = std::monostate;

class Value {
 public:
  static constexpr std::size_t kInline = 32;
  template <class T>
  static constexpr bool fits_inline = sizeof(T) <= kInline &&
                                      alignof(T) <= alignof(std::max_align_t) &&
                                      std::is_nothrow_move_constructible_v<T>;

  Value() noexcept = default;
  Value(Value&& other) noexcept { take_from(other); }
  Value& operator=(Value&& other) noexcept {
    if (this != &other) {
      reset();
      take_from(other);
    }
    return *this;
  }
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  ~Value() { reset(); }

  /// A Value holding T constructed from args.
  template <class T, class... A>
  static Value make(A&&... args);
  /// A Value holding a copy or move of v.
  template <class T>
  static Value of(T&& v) {
    return make<std::remove_cvref_t<T>>(std::forward<T>(v));
  }

  bool has_value() const noexcept { return type_ != nullptr; }
  const ValueType* type() const noexcept { return type_; }
  template <class T>
  bool holds() const noexcept;

  /// The held object; TypeError if it is not a T (or if empty).
  template <class T>
  const T& get() const;
  template <class T>
  T& get();
  /// Moves the held T out, leaving the Value empty.
  template <class T>
  T take();

  /// A deep copy; TypeError if the held type cannot be copied.
  Value clone() const;
  std::size_t nbytes() const { return type_ ? type_->nbytes(object()) : 0; }
  /// Demangled name of the held type ("<empty>" when empty).
  std::string type_name() const;
  void reset() noexcept {
    if (!type_) return;
    if (type_->stored_inline) {
      type_->destroy(buf_);
    } else {
      type_->destroy(heap_);
    }
    type_ = nullptr;
  }

 private:
  const void* object() const noexcept { return type_->stored_inline ? buf_ : heap_; }
  void* object() noexcept { return type_->stored_inline ? buf_ : heap_; }
  void take_from(Value& other) noexcept {
    type_ = other.type_;
    if (!type_) return;
    if (type_->stored_inline) {
      type_->relocate(buf_, other.buf_);
    } else {
      heap_ = other.heap_;
    }
    other.type_ = nullptr;
  }
  [[noreturn]] void throw_wrong_type(const std::type_info& wanted) const;

  const ValueType* type_ = nullptr;
  union {
    alignas(std::max_align_t) unsigned char buf_[kInline];
    void* heap_;
  };
};

namespace detail {
template <class T>
const ValueType& value_type_of() {
  // Naming the registration instantiates it: T is registered before main().
  static_cast<void>(TypeRegistration<T>::done);
  static const ValueType vt = [] {
    ValueType t{};
    t.type = &typeid(T);
    t.stored_inline = Value::fits_inline<T>;
    if constexpr (Value::fits_inline<T>) {
      t.destroy = [](void* p) { static_cast<T*>(p)->~T(); };
      t.relocate = [](void* dst, void* src) {
        ::new (dst) T(std::move(*static_cast<T*>(src)));
        static_cast<T*>(src)->~T();
      };
    } else {
      t.destroy = [](void* p) { delete static_cast<T*>(p); };
      t.relocate = nullptr;
    }
    if constexpr (std::is_copy_constructible_v<T>) {
      t.copy = [](void* dst, const void* src) { ::new (dst) T(*static_cast<const T*>(src)); };
      t.heap_copy = [](const void* src) -> void* { return new T(*static_cast<const T*>(src)); };
    }
    t.nbytes = [](const void* p) { return SizeOf<T>::apply(*static_cast<const T*>(p)); };
    t.type_id = stable_type_id(typeid(T));
    if constexpr (is_serializable_v<T>) {
      t.encode = [](const Value& v, Encoded& out) { Codec<T>::encode(v.get<T>(), out); };
      t.decode = [](std::span<const std::byte> payload, EncodedBuffers buffers) {
        EncodingReader in(payload, buffers, typeid(T));
        Value v = Value::make<T>(Codec<T>::decode(in));
        in.finish();
        return v;
      };
    }
    return t;
  }();
  return vt;
}
}  // namespace detail

template <class T, class... A>
Value Value::make(A&&... args) {
  static_assert(std::is_same_v<T, std::remove_cvref_t<T>>, "Value::make<T>: T must be a plain type");
  static_assert(std::is_move_constructible_v<T>, "task results must be movable");
  Value v;
  if constexpr (fits_inline<T>) {
    ::new (v.buf_) T(std::forward<A>(args)...);
  } else {
    v.heap_ = new T(std::forward<A>(args)...);
  }
  v.type_ = &detail::value_type_of<T>();
  return v;
}

template <class T>
bool Value::holds() const noexcept {
  // Pointer equality is the fast path; typeid equality covers copies of the
  // static ValueType made in other shared objects.
  return type_ && (type_ == &detail::value_type_of<T>() || *type_->type == typeid(T));
}

template <class T>
const T& Value::get() const {
  if (!holds<T>()) throw_wrong_type(typeid(T));
  return *static_cast<const T*>(object());
}

template <class T>
T& Value::get() {
  if (!holds<T>()) throw_wrong_type(typeid(T));
  return *static_cast<T*>(object());
}

template <class T>
T Value::take() {
  T out = std::move(get<T>());
  reset();
  return out;
}

}  // namespace weft
