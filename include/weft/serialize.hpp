// weft/serialize.hpp - task results as bytes, for sending them between ranks.
//
// Every rank runs the same binary, so a Value travels as a small header (its
// type id and whatever the decoder needs) plus zero or more large buffers
// that point into the Value's own memory: MPI sends each buffer straight from
// there, without a copy. How a type T is encoded:
//   - trivially copyable T: its bytes, in the header;
//   - std::string, std::vector<E> of trivially copyable E: the length in the
//     header, the characters / elements as one buffer;
//   - anything cereal can save and load with its binary archives (including
//     std::vector, std::string, std::map, std::unordered_map, std::pair,
//     std::tuple, std::array, std::optional and std::complex of such types,
//     and types with a cereal serialize function): cereal's bytes, in the header.
//   - types that specialise CustomCodec<T> (below): their own encoding.
// Other types are not serialisable: encode() throws, and is_serializable_v<T>
// lets the runtime refuse them when a task is submitted.
//
// The type id is XXH3-64 of typeid(T).name(), so it is the same on every rank
// and in every run. Every type a Value can hold is registered under its id
// before main() runs, so a rank can decode results it never produced itself.
//
// This header is included by weft/value.hpp (ValueType holds each type's
// encoder and decoder), so it only forward-declares Value; see the end.
#pragma once

#include <array>
#include <bit>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/common.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>

namespace weft {

class Value;
struct ValueType;

/// A Value as bytes: `header` owns its bytes; `buffers` point into the
/// encoded Value, which must outlive them (until the send completes), or
/// into memory the encoding made (a strided array packed into one buffer),
/// which `keep_alive` holds as long as the Encoded lives or is passed on.
struct Encoded {
  std::vector<std::byte> header;
  std::vector<std::span<const std::byte>> buffers;
  std::shared_ptr<const void> keep_alive;
};

using EncodedBuffers = std::span<const std::span<const std::byte>>;

namespace detail {
class EncodingReader;
}
/// A type with its own encoding (one that hands its large memory to MPI as
/// buffers, say) specialises CustomCodec with
///   static void encode(const T& v, Encoded& out);   // append to out.header, add buffers
///   static T decode(detail::EncodingReader& in);     // read them back
/// and is then serialisable like the types below.
template <class T>
struct CustomCodec;

/// Encodes v; TypeError "type.not-serializable" naming the type if it cannot
/// be, ValueError "value.empty" if v holds nothing.
Encoded encode(const Value& v);
/// The Value that encode() made `header` and `buffers` from, on any rank of
/// the same binary. TypeError "type.unknown-type" for a type id no type in
/// this process has; ValueError "value.bad-encoding" when a length does not
/// match (nothing is read outside the spans).
Value decode(std::span<const std::byte> header, EncodedBuffers buffers);
/// Bytes that travel: the header plus all buffers.
std::size_t encoded_size(const Encoded& e) noexcept;

namespace detail {

/// The bytes at the front of every header.
using TypeId = std::uint64_t;
/// XXH3-64 of type.name() (the mangled name).
TypeId stable_type_id(const std::type_info& type);
/// Adds a type to the process-wide id -> ValueType registry; returns true.
bool register_value_type(const ValueType& type);

template <class T>
const ValueType& value_type_of();

/// Registers T before main() runs. Dynamic initialisation of a static data
/// member of a class template runs at program start-up in every process whose
/// binary instantiates it, and value_type_of<T>() instantiates it by naming
/// `done`. So a worker rank knows every result type of the binary, including
/// those only other ranks produce. The registry itself is a function-local
/// static, since these initialisers run in no particular order.
template <class T>
struct TypeRegistration {
  static const bool done;
};
template <class T>
const bool TypeRegistration<T>::done = register_value_type(value_type_of<T>());

/// Reads an encoding back; every read is checked against the bytes there,
/// and a mismatch is a ValueError "value.bad-encoding" naming the type.
class EncodingReader {
 public:
  EncodingReader(std::span<const std::byte> payload, EncodedBuffers buffers,
                 const std::type_info& type) noexcept
      : payload_(payload), buffers_(buffers), type_(type) {}

  /// The next n bytes of the header.
  std::span<const std::byte> bytes(std::size_t n) {
    if (n > payload_.size())
      fail("the header ends " + std::to_string(n - payload_.size()) + " bytes early");
    return take(n);
  }
  /// The rest of the header.
  std::span<const std::byte> rest() noexcept { return take(payload_.size()); }
  std::uint64_t u64();
  /// The next buffer, which must hold `size` bytes.
  std::span<const std::byte> buffer(std::size_t size);
  /// Checks that the header and the buffers were used up.
  void finish() const;
  [[noreturn]] void fail(const std::string& problem) const;

 private:
  std::span<const std::byte> take(std::size_t n) noexcept {
    std::span<const std::byte> out = payload_.first(n);
    payload_ = payload_.subspan(n);
    return out;
  }

  std::span<const std::byte> payload_;
  EncodedBuffers buffers_;
  std::size_t buffers_used_ = 0;
  const std::type_info& type_;
};

inline void append_bytes(std::vector<std::byte>& out, const void* data, std::size_t n) {
  const auto* first = static_cast<const std::byte*>(data);
  out.insert(out.end(), first, first + n);
}

/// Whether cereal's binary archives can save and load T, looking inside the
/// std containers (cereal's own traits accept std::vector<E> whatever E is,
/// and the container's save would then fail to compile).
template <class T>
struct CerealSafe
    : std::conjunction<std::is_default_constructible<T>,
                       cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>,
                       cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>> {};
template <class E, class A>
struct CerealSafe<std::vector<E, A>> : CerealSafe<E> {};
template <class E, std::size_t N>
struct CerealSafe<std::array<E, N>> : CerealSafe<E> {};
template <class E>
struct CerealSafe<std::optional<E>> : CerealSafe<E> {};
template <class E>
struct CerealSafe<std::complex<E>> : CerealSafe<E> {};
template <class A, class B>
struct CerealSafe<std::pair<A, B>> : std::conjunction<CerealSafe<A>, CerealSafe<B>> {};
template <class... Ts>
struct CerealSafe<std::tuple<Ts...>> : std::conjunction<CerealSafe<Ts>...> {};
template <class K, class V, class C, class A>
struct CerealSafe<std::map<K, V, C, A>> : std::conjunction<CerealSafe<K>, CerealSafe<V>> {};
template <class K, class V, class H, class E, class A>
struct CerealSafe<std::unordered_map<K, V, H, E, A>>
    : std::conjunction<CerealSafe<K>, CerealSafe<V>> {};

template <class T>
struct IsTrivialVector : std::false_type {};
template <class E>
struct IsTrivialVector<std::vector<E>>
    : std::bool_constant<std::is_trivially_copyable_v<E> && std::is_default_constructible_v<E> &&
                         !std::is_same_v<E, bool>> {};

enum class Encoding { none, custom, bytes, string, vector, cereal };

template <class T>
constexpr Encoding encoding_of() {
  if constexpr (requires { &CustomCodec<T>::encode; }) return Encoding::custom;
  else if constexpr (std::is_trivially_copyable_v<T>) return Encoding::bytes;
  else if constexpr (std::is_same_v<T, std::string>) return Encoding::string;
  else if constexpr (IsTrivialVector<T>::value) return Encoding::vector;
  else if constexpr (CerealSafe<T>::value) return Encoding::cereal;
  else return Encoding::none;
}

/// cereal with weft's byte vectors and checks; `save` / `load` call the archive.
void cereal_save(std::vector<std::byte>& out, void (*save)(cereal::BinaryOutputArchive&, const void*),
                 const void* object);
void cereal_load(EncodingReader& in, void (*load)(cereal::BinaryInputArchive&, void*), void* object);

/// encode(): appends T's payload to the header (after the type id) and adds
/// buffers; decode(): reads it back. Not defined for unserialisable types.
template <class T, Encoding = encoding_of<T>()>
struct Codec;

template <class T>
struct Codec<T, Encoding::custom> : CustomCodec<T> {};
template <class T>
struct Codec<T, Encoding::bytes> {
  static void encode(const T& v, Encoded& out) { append_bytes(out.header, &v, sizeof(T)); }
  static T decode(EncodingReader& in) {
    // bit_cast: T need not be default-constructible.
    std::array<std::byte, sizeof(T)> raw;
    std::memcpy(raw.data(), in.bytes(sizeof(T)).data(), sizeof(T));
    return std::bit_cast<T>(raw);
  }
};

template <>
struct Codec<std::string, Encoding::string> {
  static void encode(const std::string& s, Encoded& out) {
    const std::uint64_t size = s.size();
    append_bytes(out.header, &size, sizeof size);
    out.buffers.push_back(std::as_bytes(std::span(s.data(), s.size())));
  }
  static std::string decode(EncodingReader& in) {
    std::span<const std::byte> chars = in.buffer(in.u64());
    return std::string(reinterpret_cast<const char*>(chars.data()), chars.size());
  }
};

template <class E>
struct Codec<std::vector<E>, Encoding::vector> {
  static void encode(const std::vector<E>& v, Encoded& out) {
    const std::uint64_t count = v.size();
    append_bytes(out.header, &count, sizeof count);
    out.buffers.push_back(std::as_bytes(std::span(v.data(), v.size())));
  }
  static std::vector<E> decode(EncodingReader& in) {
    const std::uint64_t count = in.u64();
    if (count > SIZE_MAX / sizeof(E))
      in.fail("an element count of " + std::to_string(count) + " does not fit in memory");
    std::span<const std::byte> data = in.buffer(count * sizeof(E));
    std::vector<E> v(count);
    if (count != 0) std::memcpy(v.data(), data.data(), data.size());
    return v;
  }
};

template <class T>
struct Codec<T, Encoding::cereal> {
  static void encode(const T& v, Encoded& out) {
    cereal_save(out.header, [](cereal::BinaryOutputArchive& ar, const void* p) {
      ar(*static_cast<const T*>(p));
    }, &v);
  }
  static T decode(EncodingReader& in) {
    T v;
    cereal_load(in, [](cereal::BinaryInputArchive& ar, void* p) { ar(*static_cast<T*>(p)); }, &v);
    return v;
  }
};

}  // namespace detail

/// Whether a Value holding T can be encoded (and so sent to another rank).
template <class T>
inline constexpr bool is_serializable_v = detail::encoding_of<T>() != detail::Encoding::none;

}  // namespace weft

// Value is defined there; this include is skipped when value.hpp included us.
#include "weft/value.hpp"
