// Tasks as bytes: the common header (type id, flags, key, dependency count),
// the registry of task decoders, and ConstantTask's payload (its value, or
// the value's position among the attachments).
#include "weft/detail/task_wire.hpp"

#include <cstdio>

#include "type_registry.hpp"
#include "weft/detail/demangle.hpp"
#include "weft/error.hpp"
#include "weft/task.hpp"

namespace weft {

namespace {

// kAttached: a constant task whose payload is the position of its value
// among the attachments.
enum Flags : std::uint8_t { kCheap = 1, kHasToken = 2, kHasIndex = 4, kAttached = 8 };

// Function-local: registrations run during static initialisation, in any order.
detail::TypeRegistry<detail::TaskWireType>& task_registry() {
  static detail::TypeRegistry<detail::TaskWireType> r(
      {"task", "task type", "unknown-task-type", "the bytes are corrupt",
       " (types with internal linkage, such as lambdas or classes in unnamed namespaces, of the same name in "
       "two source files)",
       "; give one of them another name"});
  return r;
}

template <class T>
void append(std::vector<std::byte>& out, const T& v) {
  detail::append_bytes(out, &v, sizeof v);
}

template <class T>
T read(detail::EncodingReader& in) {
  T v;
  std::memcpy(&v, in.bytes(sizeof v).data(), sizeof v);
  return v;
}

void encode_header(const Task& task, bool attached, std::vector<std::byte>& out) {
  const Key& key = task.key();
  append(out, detail::stable_type_id(typeid(task)));
  append(out, static_cast<std::uint8_t>((task.cheap() ? kCheap : 0) |
                                        (key.has_token() ? kHasToken : 0) |
                                        (key.index().empty() ? 0 : kHasIndex) | (attached ? kAttached : 0)));
  append(out, static_cast<std::uint32_t>(key.name().size()));
  detail::append_bytes(out, key.name().data(), key.name().size());
  if (key.has_token()) append(out, key.token());
  if (!key.index().empty()) {
    append(out, static_cast<std::uint32_t>(key.index().size()));
    detail::append_bytes(out, key.index().data(), key.index().size_bytes());
  }
  append(out, static_cast<std::uint32_t>(task.dependencies().size()));
}

detail::TaskHeader decode_header(detail::EncodingReader& in, bool& attached) {
  const auto flags = read<std::uint8_t>(in);
  if (flags & ~(kCheap | kHasToken | kHasIndex | kAttached))
    in.fail("unknown flags " + std::to_string(flags) + " in the task header");
  attached = (flags & kAttached) != 0;
  std::span<const std::byte> name_bytes = in.bytes(read<std::uint32_t>(in));
  std::string_view name(reinterpret_cast<const char*>(name_bytes.data()), name_bytes.size());
  // Keys of delayed calls (a token, no index) take the allocation-free path.
  Key key = (flags & kHasToken) ? Key(detail::intern(name), read<Token>(in))
                                : Key(name, std::initializer_list<std::int64_t>{});
  if (flags & kHasIndex) {
    const auto count = read<std::uint32_t>(in);
    std::span<const std::byte> raw = in.bytes(std::size_t{count} * sizeof(std::int64_t));
    std::vector<std::int64_t> index(count);
    std::memcpy(index.data(), raw.data(), raw.size());
    key = key.with_index(std::move(index));
  }
  const auto dependencies = read<std::uint32_t>(in);
  return {std::move(key), (flags & kCheap) != 0, dependencies};
}

TaskPtr decode_constant(detail::TaskHeader&& header, detail::EncodingReader& in) {
  if (header.cheap || header.dependencies != 0)
    in.fail("a constant task is never cheap and has no dependencies");
  std::span<const std::byte> value_header = in.bytes(in.u64());
  const auto count = read<std::uint32_t>(in);
  std::vector<std::span<const std::byte>> buffers;
  // No reserve: a corrupt count must not allocate before the bytes run out.
  for (std::uint32_t i = 0; i < count; ++i) buffers.push_back(in.bytes(in.u64()));
  return std::make_shared<ConstantTask>(std::move(header.key), decode(value_header, buffers));
}

// A constant task whose value travelled beside the bytes: it takes the value.
TaskPtr decode_attached(const detail::TaskWireType& type, detail::TaskHeader&& header, detail::EncodingReader& in,
                        std::span<Value> attachments) {
  if (type.type != &typeid(ConstantTask)) in.fail("only a constant task has an attached value");
  if (header.cheap || header.dependencies != 0)
    in.fail("a constant task is never cheap and has no dependencies");
  const auto index = read<std::uint32_t>(in);
  if (index >= attachments.size() || !attachments[index].has_value())
    in.fail("attached value " + std::to_string(index) + " is not among the " +
            std::to_string(attachments.size()) + " sent, or another task took it");
  return std::make_shared<ConstantTask>(std::move(header.key), std::move(attachments[index]));
}

[[maybe_unused]] const bool constant_task_registered = detail::register_task_type(
    {&typeid(ConstantTask), detail::stable_type_id(typeid(ConstantTask)), &decode_constant});

}  // namespace

void Task::encode(std::vector<std::byte>&) const {
  throw TypeError("not-serializable", "cannot send task '" + key().str() +
                                          "' to another rank: its type '" +
                                          detail::demangle(typeid(*this)) +
                                          "' does not override Task::encode");
}

Value Task::combine(std::vector<Value>&&) const {
  throw TypeError("not-collective", "task '" + key().str() + "' is not a collective step: it has no per-rank results to combine");
}

void ConstantTask::encode(std::vector<std::byte>& out) const {
  const Encoded e = weft::encode(value_);
  append(out, static_cast<std::uint64_t>(e.header.size()));
  detail::append_bytes(out, e.header.data(), e.header.size());
  append(out, static_cast<std::uint32_t>(e.buffers.size()));
  for (std::span<const std::byte> b : e.buffers) {
    append(out, static_cast<std::uint64_t>(b.size()));
    detail::append_bytes(out, b.data(), b.size());
  }
}

namespace detail {

void encode_task(const Task& task, std::vector<std::byte>& out, std::vector<Value>* attachments) {
  const std::size_t start = out.size();
  // A value that cannot travel is left to ConstantTask::encode, which names it.
  const auto* constant = attachments ? dynamic_cast<const ConstantTask*>(&task) : nullptr;
  const bool attach = constant && constant->value().has_value() && constant->value().type()->serializable();
  try {
    encode_header(task, attach, out);
    if (attach) {
      append(out, static_cast<std::uint32_t>(attachments->size()));
      attachments->push_back(constant->value().clone());
    } else {
      task.encode(out);
    }
  } catch (...) {
    out.resize(start);
    throw;
  }
}

TaskPtr decode_task(std::span<const std::byte>& in, std::span<Value> attachments) {
  TypeId id;
  if (in.size() < sizeof id)
    throw ValueError("bad-encoding", "cannot decode a task from " + std::to_string(in.size()) +
                                         " bytes: they are too few to hold a type id (" +
                                         std::to_string(sizeof id) + " bytes)");
  std::memcpy(&id, in.data(), sizeof id);
  const TaskWireType& type = task_registry().find(id);
  EncodingReader reader(in.subspan(sizeof id), {}, *type.type);
  bool attached = false;
  TaskHeader header = decode_header(reader, attached);
  TaskPtr task = attached ? decode_attached(type, std::move(header), reader, attachments)
                          : type.decode(std::move(header), reader);
  in = reader.rest();
  return task;
}

bool register_task_type(const TaskWireType& type) {
  task_registry().add(type.id, *type.type, type);
  return true;
}

void refuse_encoding(const Task& task, const std::type_info& part, Refusal why) {
  const std::string prefix = "cannot send task '" + task.key().str() + "' to another rank: ";
  const std::string name = demangle(part);
  switch (why) {
    case Refusal::function:
      throw TypeError("not-serializable",
                      prefix + "its function, of type '" + name +
                          "', captures state that cannot be copied bytewise (it is not an empty "
                          "class, a function pointer or trivially copyable: it holds a "
                          "std::string, a container or another object with its own copy "
                          "constructor) and cereal cannot save it. Capture only trivially "
                          "copyable values, or pass the state as an argument");
    case Refusal::pointer_argument:
      throw TypeError("not-serializable",
                      prefix + "its argument of type '" + name +
                          "' points into this process's memory, which another rank cannot "
                          "read. Pass the value itself (a std::string for text)");
    case Refusal::argument:
      break;
  }
  throw TypeError("not-serializable",
                  prefix + "its argument of type '" + name +
                      "' cannot be serialised: it is not trivially copyable, a std::string, "
                      "a vector, array, tuple or pair of serialisable types, and cereal cannot "
                      "save and load it. Give the type a default constructor and a cereal "
                      "member `template <class Archive> void serialize(Archive& ar) { "
                      "ar(field, ...); }`");
}

std::uint32_t TaskReader::slot() {
  const auto index = read<std::uint32_t>(in);
  if (index >= dependencies)
    in.fail("dependency slot " + std::to_string(index) + " is out of range (the header says " +
            std::to_string(dependencies) + " dependencies)");
  ++slots_read;
  return index;
}

void TaskReader::check_slots() const {
  if (slots_read != dependencies)
    in.fail("the header says " + std::to_string(dependencies) + " dependencies where the " +
            "arguments hold " + std::to_string(slots_read));
}

}  // namespace detail
}  // namespace weft
