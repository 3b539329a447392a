// weft/detail/task_wire.hpp - tasks as bytes, so that rank 0 can send a task
// to a worker rank running the same binary.
//
// An encoded task reads
//   [type id u64][flags u8][name length u32][name][token 16 bytes]?[index count u32][index i64...]?
//   [dependency count u32][payload]
// The type id is XXH3-64 of the mangled name of the task's dynamic type
// (serialize.hpp's stable_type_id); flags say whether the task is cheap and
// whether the key has a token and a chunk index. The payload is the task's
// own (Task::encode). A CallTask's payload is its function, then its stored
// arguments in order:
//   - the function: nothing for an empty class (captureless lambdas,
//     std::plus<>: default-constructed on arrival), (object id, offset) for a
//     function pointer, else as an argument would travel;
//   - a function pointer: the loaded object holding it (the main program or a
//     shared library, by a hash of its file name) and the offset in it, so a
//     rank whose libraries were loaded at other addresses finds it again;
//   - a dependency placeholder (DepSlot): its index in dependencies();
//   - a trivially copy-constructible and destructible value: its bytes (a
//     closure capturing by reference or a struct holding a pointer is sent
//     as it is, and points nowhere on the receiver: capture and pass values);
//   - std::string: length and characters;
//   - std::vector, std::array, std::tuple, std::pair: element by element
//     (a count first for vectors; one block for trivially copyable elements);
//   - anything else cereal can save and load: length-prefixed cereal bytes.
// Data pointers, std::string_view and std::span are refused, since what they
// point at stays behind, as are types none of the above fits: encoding such a
// task throws TypeError "type.not-serializable" naming the type. It compiles,
// since local schedulers never encode tasks.
//
// Every CallTask instantiation registers its decoder before main() under its
// type id (as serialize.hpp registers value types), so any rank can rebuild a
// task it never made itself.
//
// A ConstantTask (a literal: data from the client) carries its value copied
// into its payload, or, when the encoder collects attachments, only the
// value's position among them: the distributed scheduler sends attached
// values beside the task's bytes, their large buffers straight from their
// own memory (the caller's array for from_array), so the data is not copied
// into the bytes on the way.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weft/key.hpp"
#include "weft/serialize.hpp"
#include "weft/value.hpp"

namespace weft {

class Task;
using TaskPtr = std::shared_ptr<const Task>;

namespace detail {

/// Appends `task` as bytes (layout above). TypeError "type.not-serializable"
/// naming the part that cannot be sent; `out` is then as it was. With
/// `attachments`, a ConstantTask's value is appended there instead of being
/// copied into `out` (see above).
void encode_task(const Task& task, std::vector<std::byte>& out, std::vector<Value>* attachments = nullptr);
/// Consumes one encoded task from the front of `in` and rebuilds it: run()
/// with the same inputs gives the same result. Its dependencies() are as many
/// as the original's, with empty keys and no tasks (the receiver knows the
/// inputs by position). TypeError "type.unknown-task-type" for a type id no
/// task type of this process has, "type.id-collision" for one two types share;
/// ValueError "value.bad-encoding" for bytes that do not parse (nothing is
/// read outside `in`, which is left as it was on a throw). A constant task
/// whose value was attached takes it (moved) from `attachments`, the values
/// encode_task collected, in order; naming one that is not there is
/// "value.bad-encoding".
TaskPtr decode_task(std::span<const std::byte>& in, std::span<Value> attachments = {});

/// Where a function is, in terms another process of the same binary
/// understands: the loaded object (a hash of its file name; a fixed id for
/// the main program) and the offset from the object's load address.
struct FunctionLocation {
  std::uint64_t object;
  std::uint64_t offset;
};
/// TypeError "type.not-serializable" when `fn` is in no loaded object, or in
/// one whose file name another loaded object shares. Cheap when called again
/// for functions of the same object.
FunctionLocation function_location(const void* fn);
/// The function at `where` in this process. TypeError "type.unknown-function"
/// when no loaded object has that id, "type.id-collision" when two have;
/// ValueError "value.bad-encoding" when the offset is outside the object's code.
const void* function_at(const FunctionLocation& where);

/// The common part of an encoded task, read before its payload.
struct TaskHeader {
  Key key;
  bool cheap;
  std::uint32_t dependencies;
};

/// How to rebuild one task type from its payload.
struct TaskWireType {
  const std::type_info* type;
  TypeId id;
  TaskPtr (*decode)(TaskHeader&& header, EncodingReader& payload);
};
/// Adds a type to the process-wide id -> TaskWireType registry; returns true.
bool register_task_type(const TaskWireType& type);

/// Registers T's decoder before main() runs, as TypeRegistration does for
/// values: naming `done` (T's constructor does) instantiates it.
template <class T>
struct TaskRegistration {
  static const bool done;
};
template <class T>
const bool TaskRegistration<T>::done =
    register_task_type({&typeid(T), stable_type_id(typeid(T)), &T::decode_payload});

/// Why a part of a task cannot be encoded.
enum class Refusal { argument, pointer_argument, function };
[[noreturn]] void refuse_encoding(const Task& task, const std::type_info& part, Refusal why);

template <class T>
struct DepSlot;

/// Reads a task's payload and checks each dependency placeholder against the
/// dependency count of the header.
struct TaskReader {
  EncodingReader& in;
  std::uint32_t dependencies;
  std::uint32_t slots_read = 0;

  std::uint32_t slot();
  /// Checks that the payload held as many placeholders as the header says.
  void check_slots() const;
};

template <class T>
struct IsView : std::false_type {};
template <class C, class Tr>
struct IsView<std::basic_string_view<C, Tr>> : std::true_type {};
template <class E, std::size_t N>
struct IsView<std::span<E, N>> : std::true_type {};

enum class LeafWire { function, bytes, string, cereal, pointer, none };

template <class S>
constexpr LeafWire leaf_wire() {
  if constexpr (std::is_pointer_v<S> && std::is_function_v<std::remove_pointer_t<S>>)
    return LeafWire::function;
  else if constexpr (std::is_pointer_v<S> || std::is_member_pointer_v<S> || IsView<S>::value)
    return LeafWire::pointer;
  // Not is_trivially_copyable: GCC 12 calls a closure capturing a number not
  // trivially copyable (its copy assignment is deleted), and such lambdas
  // must travel (map_blocks' functions).
  else if constexpr (std::is_trivially_copy_constructible_v<S> && std::is_trivially_destructible_v<S>)
    return LeafWire::bytes;
  else if constexpr (std::is_same_v<S, std::string>) return LeafWire::string;
  else if constexpr (CerealSafe<S>::value) return LeafWire::cereal;
  else return LeafWire::none;
}

/// Throws for the first of the wires W... that cannot travel.
template <class W, class... Rest>
[[noreturn]] void refuse_first(const Task& task) {
  if constexpr (!W::serializable) W::refuse(task);
  else refuse_first<Rest...>(task);
}

/// How a stored argument S travels. Each wire has `serializable`, `bulk`
/// (its object bytes may be copied as they are), encode and decode (used
/// only when serializable) and refuse (only when not). Every serialisable S
/// takes at least one byte, so a corrupt element count runs out of bytes
/// rather than looping.
template <class S>
struct ArgWire {
  static constexpr LeafWire kind = leaf_wire<S>();
  static constexpr bool serializable = kind != LeafWire::pointer && kind != LeafWire::none;
  static constexpr bool bulk = kind == LeafWire::bytes;

  static void encode(std::vector<std::byte>& out, const S& v) {
    if constexpr (kind == LeafWire::function) {
      const FunctionLocation where = function_location(reinterpret_cast<const void*>(v));
      append_bytes(out, &where, sizeof where);
    } else if constexpr (kind == LeafWire::bytes) {
      append_bytes(out, &v, sizeof v);
    } else if constexpr (kind == LeafWire::string) {
      const std::uint64_t size = v.size();
      append_bytes(out, &size, sizeof size);
      append_bytes(out, v.data(), v.size());
    } else {
      static_assert(kind == LeafWire::cereal, "encoded only when serializable");
      // The length goes first, patched in once cereal has written.
      const std::size_t at = out.size();
      out.resize(at + sizeof(std::uint64_t));
      cereal_save(out, [](cereal::BinaryOutputArchive& ar, const void* p) {
        ar(*static_cast<const S*>(p));
      }, &v);
      const std::uint64_t size = out.size() - at - sizeof size;
      std::memcpy(out.data() + at, &size, sizeof size);
    }
  }
  static S decode(TaskReader& r) {
    if constexpr (kind == LeafWire::function) {
      FunctionLocation where;
      std::memcpy(&where, r.in.bytes(sizeof where).data(), sizeof where);
      return reinterpret_cast<S>(const_cast<void*>(function_at(where)));
    } else if constexpr (kind == LeafWire::bytes) {
      // Copying the bytes into storage makes an S there (an implicit-lifetime
      // type: trivially copy-constructible and destructible); closures have
      // no default constructor to start from.
      alignas(S) std::byte raw[sizeof(S)];
      std::memcpy(raw, r.in.bytes(sizeof(S)).data(), sizeof(S));
      return *std::launder(reinterpret_cast<S*>(raw));
    } else if constexpr (kind == LeafWire::string) {
      std::span<const std::byte> chars = r.in.bytes(r.in.u64());
      return std::string(reinterpret_cast<const char*>(chars.data()), chars.size());
    } else {
      static_assert(kind == LeafWire::cereal, "decoded only when serializable");
      EncodingReader cereal_bytes(r.in.bytes(r.in.u64()), {}, typeid(S));
      return Codec<S, Encoding::cereal>::decode(cereal_bytes);
    }
  }
  [[noreturn]] static void refuse(const Task& task) {
    refuse_encoding(task, typeid(S),
                    kind == LeafWire::pointer ? Refusal::pointer_argument : Refusal::argument);
  }
};

template <class T>
struct ArgWire<DepSlot<T>> {
  static constexpr bool serializable = true;
  static constexpr bool bulk = false;
  static void encode(std::vector<std::byte>& out, const DepSlot<T>& s) {
    append_bytes(out, &s.index, sizeof s.index);
  }
  static DepSlot<T> decode(TaskReader& r) { return {r.slot()}; }
};

template <class E>
struct ArgWire<std::vector<E>> {
  static constexpr bool serializable = ArgWire<E>::serializable;
  static constexpr bool bulk = false;
  static constexpr bool kBlock = ArgWire<E>::bulk && std::is_default_constructible_v<E> &&
                                 !std::is_same_v<E, bool>;

  static void encode(std::vector<std::byte>& out, const std::vector<E>& v) {
    const std::uint64_t count = v.size();
    append_bytes(out, &count, sizeof count);
    if constexpr (kBlock) {
      append_bytes(out, v.data(), v.size() * sizeof(E));
    } else {
      for (const E& e : v) ArgWire<E>::encode(out, e);
    }
  }
  static std::vector<E> decode(TaskReader& r) {
    const std::uint64_t count = r.in.u64();
    std::vector<E> v;
    if constexpr (kBlock) {
      if (count > SIZE_MAX / sizeof(E))
        r.in.fail("an element count of " + std::to_string(count) + " does not fit in memory");
      std::span<const std::byte> data = r.in.bytes(count * sizeof(E));
      v.resize(count);
      if (count != 0) std::memcpy(v.data(), data.data(), data.size());
    } else {
      // No reserve: a corrupt count must not allocate before the bytes run out.
      for (std::uint64_t i = 0; i < count; ++i) v.push_back(ArgWire<E>::decode(r));
    }
    return v;
  }
  [[noreturn]] static void refuse(const Task& task) { ArgWire<E>::refuse(task); }
};

/// std::array, std::tuple and std::pair: one block when trivially copyable
/// and free of placeholders and pointers, else element by element.
template <class S, class... E>
struct ElementsWire {
  static constexpr bool serializable = (ArgWire<E>::serializable && ...);
  static constexpr bool bulk = std::is_trivially_copyable_v<S> && (ArgWire<E>::bulk && ...);

  static void encode(std::vector<std::byte>& out, const S& v) {
    if constexpr (bulk) {
      append_bytes(out, &v, sizeof v);
    } else {
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (ArgWire<E>::encode(out, std::get<I>(v)), ...);
      }(std::index_sequence_for<E...>{});
    }
  }
  static S decode(TaskReader& r) {
    if constexpr (bulk) {
      return Codec<S, Encoding::bytes>::decode(r.in);
    } else {
      // A braced list evaluates its elements in order.
      return S{ArgWire<E>::decode(r)...};
    }
  }
  [[noreturn]] static void refuse(const Task& task) { refuse_first<ArgWire<E>...>(task); }
};

template <std::size_t, class T>
struct Repeat {
  using type = T;
};
template <class E, std::size_t N, class Seq = std::make_index_sequence<N>>
struct ArrayWire;
template <class E, std::size_t N, std::size_t... I>
struct ArrayWire<E, N, std::index_sequence<I...>>
    : ElementsWire<std::array<E, N>, typename Repeat<I, E>::type...> {};

template <class E, std::size_t N>
struct ArgWire<std::array<E, N>> : ArrayWire<E, N> {};
template <class... E>
struct ArgWire<std::tuple<E...>> : ElementsWire<std::tuple<E...>, E...> {};
template <class A, class B>
struct ArgWire<std::pair<A, B>> : ElementsWire<std::pair<A, B>, A, B> {};

/// How a CallTask's function travels: nothing for an empty class, else as an
/// argument would (function pointers, trivially copyable closures).
template <class F>
struct FunctionWire {
  static constexpr bool kEmpty = std::is_empty_v<F> && std::is_default_constructible_v<F>;
  static constexpr bool serializable = kEmpty || ArgWire<F>::serializable;

  static void encode(std::vector<std::byte>& out, const F& fn) {
    if constexpr (!kEmpty) ArgWire<F>::encode(out, fn);
  }
  static F decode(TaskReader& r) {
    if constexpr (kEmpty) return F{};
    else return ArgWire<F>::decode(r);
  }
  [[noreturn]] static void refuse(const Task& task) {
    refuse_encoding(task, typeid(F), Refusal::function);
  }
};

}  // namespace detail
}  // namespace weft
