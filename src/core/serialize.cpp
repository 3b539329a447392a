#include "weft/serialize.hpp"

#include <xxhash.h>

#include <cstdio>
#include <istream>
#include <new>
#include <ostream>
#include <stdexcept>
#include <streambuf>

#include "type_registry.hpp"
#include "weft/detail/demangle.hpp"
#include "weft/error.hpp"
#include "weft/value.hpp"

namespace weft {

namespace {

// Small fixed-size values encode with this single allocation.
constexpr std::size_t kSmallHeader = 64;

// Function-local: registrations run during static initialisation, in any order.
detail::TypeRegistry<const ValueType*>& registry() {
  static detail::TypeRegistry<const ValueType*> r(
      {"value", "type", "unknown-type", "the header is corrupt", "", ""});
  return r;
}

/// Appends what cereal writes to a byte vector.
class AppendBuf : public std::streambuf {
 public:
  explicit AppendBuf(std::vector<std::byte>& out) : out_(out) {}

 protected:
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof()))
      out_.push_back(static_cast<std::byte>(traits_type::to_char_type(c)));
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    detail::append_bytes(out_, s, static_cast<std::size_t>(n));
    return n;
  }

 private:
  std::vector<std::byte>& out_;
};

/// Lets cereal read a span; reading past its end is a short read, not an overrun.
class SpanBuf : public std::streambuf {
 public:
  explicit SpanBuf(std::span<const std::byte> bytes) {
    // The get area is never written through: std::streambuf only wants char*.
    char* first = const_cast<char*>(reinterpret_cast<const char*>(bytes.data()));
    setg(first, first, first + bytes.size());
  }
  std::size_t unread() const { return static_cast<std::size_t>(egptr() - gptr()); }
};

}  // namespace

Encoded encode(const Value& v) {
  if (!v.has_value()) throw ValueError("empty", "cannot encode an empty Value: it holds no type");
  const ValueType& type = *v.type();
  if (!type.serializable())
    throw TypeError("not-serializable",
                    "cannot serialise a value of type '" + v.type_name() +
                        "' to send it to another rank: it is not trivially copyable, not a "
                        "std::string or std::vector of trivially copyable elements, and cereal "
                        "cannot save and load it. Give the type (or the type inside the "
                        "container) a default constructor and a cereal member "
                        "`template <class Archive> void serialize(Archive& ar) { ar(field, ...); }`"
                        " or a non-member serialize(Archive&, T&) in its namespace");
  Encoded out;
  out.header.reserve(kSmallHeader);
  detail::append_bytes(out.header, &type.type_id, sizeof type.type_id);
  type.encode(v, out);
  return out;
}

Value decode(std::span<const std::byte> header, EncodedBuffers buffers) {
  detail::TypeId id;
  if (header.size() < sizeof id)
    throw ValueError("bad-encoding", "cannot decode a value from a header of " +
                                         std::to_string(header.size()) +
                                         " bytes: it is too short to hold a type id (" +
                                         std::to_string(sizeof id) + " bytes)");
  std::memcpy(&id, header.data(), sizeof id);
  const ValueType& type = *registry().find(id);
  if (!type.decode)
    throw TypeError("not-serializable", "cannot decode a value of type '" +
                                            detail::demangle(*type.type) +
                                            "': the type is not serialisable, so no rank "
                                            "encodes it (the header is corrupt)");
  return type.decode(header.subspan(sizeof id), buffers);
}

std::size_t encoded_size(const Encoded& e) noexcept {
  std::size_t total = e.header.size();
  for (std::span<const std::byte> b : e.buffers) total += b.size();
  return total;
}

namespace detail {

TypeId stable_type_id(const std::type_info& type) {
  const char* name = type.name();
  return XXH3_64bits(name, std::strlen(name));
}

bool register_value_type(const ValueType& type) {
  registry().add(type.type_id, *type.type, &type);
  return true;
}

std::uint64_t EncodingReader::u64() {
  std::uint64_t v;
  std::memcpy(&v, bytes(sizeof v).data(), sizeof v);
  return v;
}

std::span<const std::byte> EncodingReader::buffer(std::size_t size) {
  if (buffers_used_ == buffers_.size())
    fail("buffer " + std::to_string(buffers_used_ + 1) + " is missing (" +
         std::to_string(buffers_.size()) + " given)");
  std::span<const std::byte> b = buffers_[buffers_used_++];
  if (b.size() != size)
    fail("buffer " + std::to_string(buffers_used_) + " holds " + std::to_string(b.size()) +
         " bytes where the header says " + std::to_string(size));
  return b;
}

void EncodingReader::finish() const {
  if (!payload_.empty())
    fail("the header has " + std::to_string(payload_.size()) + " bytes too many");
  if (buffers_used_ != buffers_.size())
    fail(std::to_string(buffers_.size()) + " buffers were given where " +
         std::to_string(buffers_used_) + " are expected");
}

void EncodingReader::fail(const std::string& problem) const {
  throw ValueError("bad-encoding",
                   "cannot decode a value of type '" + demangle(type_) + "': " + problem);
}

void cereal_save(std::vector<std::byte>& out,
                 void (*save)(cereal::BinaryOutputArchive&, const void*), const void* object) {
  AppendBuf buf(out);
  std::ostream stream(&buf);
  cereal::BinaryOutputArchive archive(stream);
  save(archive, object);
}

void cereal_load(EncodingReader& in, void (*load)(cereal::BinaryInputArchive&, void*),
                 void* object) {
  SpanBuf buf(in.rest());
  std::istream stream(&buf);
  try {
    cereal::BinaryInputArchive archive(stream);
    load(archive, object);
  } catch (const cereal::Exception& e) {
    in.fail(e.what());
  } catch (const std::length_error& e) {
    // A corrupt size read by cereal: more elements than a container can hold.
    in.fail(std::string("a size in the header is impossible (") + e.what() + ")");
  } catch (const std::bad_alloc&) {
    in.fail("a size in the header asks for more memory than there is");
  }
  if (buf.unread() != 0)
    in.fail("cereal left " + std::to_string(buf.unread()) + " bytes of the header unread");
}

}  // namespace detail
}  // namespace weft
