// Identities of functions for task keys: names and tokens that do not
// depend on load addresses, so keys are the same in every run and on every
// rank of the same binary. Also function pointers as (object, offset), for
// sending tasks to other ranks (weft/detail/task_wire.hpp).
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "weft/delayed.hpp"
#include "weft/detail/demangle.hpp"
#include "weft/error.hpp"

namespace weft::detail {

namespace {

// "ns::inc<int>(int, double)" -> "inc"; "(anonymous namespace)::f(int)" -> "f".
std::string short_name(const std::string& demangled) {
  std::string s = demangled;
  // Cut the parameter list: the first '(' outside template brackets that is
  // not "(anonymous namespace)".
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '<') ++depth;
    else if (c == '>') --depth;
    else if (c == '(' && depth == 0 && s.compare(i, 21, "(anonymous namespace)") != 0) {
      s.resize(i);
      break;
    }
  }
  // Drop trailing template arguments.
  while (!s.empty() && s.back() == '>') {
    int d = 0;
    std::size_t i = s.size();
    while (i-- > 0) {
      if (s[i] == '>') ++d;
      else if (s[i] == '<' && --d == 0) break;
    }
    s.resize(i == std::string::npos ? 0 : i);
  }
  std::size_t colon = s.rfind("::");
  if (colon != std::string::npos) s = s.substr(colon + 2);
  return s.empty() ? std::string("func") : s;
}

Token hash_text(std::string_view a, std::string_view b = {}, std::uint64_t extra = 0) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  XXH3_128bits_update(st, a.data(), a.size());
  XXH3_128bits_update(st, "\0", 1);
  XXH3_128bits_update(st, b.data(), b.size());
  XXH3_128bits_update(st, &extra, sizeof extra);
  XXH128_hash_t r = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  return Token{r.low64, r.high64};
}

// The full symbol table (.symtab) of an ELF file: function symbols by
// address, including static functions, which dladdr cannot see since it
// reads only the dynamic symbols. Empty when the file is stripped.
std::unordered_map<std::uint64_t, std::string> read_function_symbols(const char* path) {
  std::unordered_map<std::uint64_t, std::string> out;
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st {};
  void* map = MAP_FAILED;
  if (::fstat(fd, &st) == 0 && st.st_size > static_cast<off_t>(sizeof(ElfW(Ehdr))))
    map = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return out;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto size = static_cast<std::size_t>(st.st_size);
  const auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
  bool valid = std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_shentsize == sizeof(ElfW(Shdr)) &&
               eh->e_shoff + std::size_t{eh->e_shnum} * sizeof(ElfW(Shdr)) <= size;
  if (valid) {
    const auto* sections = reinterpret_cast<const ElfW(Shdr)*>(base + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; ++i) {
      const ElfW(Shdr)& sh = sections[i];
      if (sh.sh_type != SHT_SYMTAB || sh.sh_link >= eh->e_shnum) continue;
      const ElfW(Shdr)& strtab = sections[sh.sh_link];
      if (sh.sh_offset + sh.sh_size > size || strtab.sh_offset + strtab.sh_size > size) continue;
      const auto* syms = reinterpret_cast<const ElfW(Sym)*>(base + sh.sh_offset);
      const char* names = reinterpret_cast<const char*>(base + strtab.sh_offset);
      for (std::size_t k = 0; k < sh.sh_size / sizeof(ElfW(Sym)); ++k) {
        const ElfW(Sym)& sym = syms[k];
        if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_name >= strtab.sh_size || sym.st_value == 0) continue;
        out.emplace(sym.st_value, std::string(names + sym.st_name));
      }
    }
  }
  ::munmap(map, size);
  return out;
}

// The static symbol of `fn` inside the object that contains it, or "".
std::string static_symbol(const Dl_info& info, const void* fn) {
  static std::mutex mutex;
  static auto* tables = new std::unordered_map<std::string, std::unordered_map<std::uint64_t, std::string>>;
  if (!info.dli_fname) return {};
  std::lock_guard lock(mutex);
  auto it = tables->find(info.dli_fname);
  if (it == tables->end()) {
    // The main program's dli_fname is argv[0], often relative: read it through /proc.
    const char* path = info.dli_fname[0] == '/' ? info.dli_fname : "/proc/self/exe";
    it = tables->emplace(info.dli_fname, read_function_symbols(path)).first;
  }
  // Symbol values are link-time addresses: relative to the load base in
  // position-independent objects, absolute in the others.
  const auto* ehdr = static_cast<const ElfW(Ehdr)*>(info.dli_fbase);
  auto address = reinterpret_cast<std::uintptr_t>(fn);
  std::uint64_t value = ehdr->e_type == ET_DYN ? address - reinterpret_cast<std::uintptr_t>(info.dli_fbase) : address;
  auto sym = it->second.find(value);
  return sym == it->second.end() ? std::string() : sym->second;
}

FunctionIdentity resolve(const void* fn) {
  Dl_info info{};
  if (dladdr(fn, &info) != 0) {
    if (info.dli_sname && info.dli_saddr == fn) {
      return {intern(short_name(demangle(info.dli_sname))), hash_text("symbol", info.dli_sname)};
    }
    // Not exported (a static function, or an executable linked without
    // -rdynamic): the full symbol table names it, unless it is stripped;
    // then the object file and offset identify it.
    // The file and offset are in the token either way: local symbols of the
    // same name in two source files are different functions.
    std::string_view file = info.dli_fname ? info.dli_fname : "";
    auto offset = static_cast<std::uint64_t>(static_cast<const char*>(fn) -
                                             static_cast<const char*>(info.dli_fbase));
    file = file.substr(file.rfind('/') == std::string_view::npos ? 0 : file.rfind('/') + 1);
    std::string symbol = static_symbol(info, fn);
    std::string name = symbol.empty() ? std::string("func") : short_name(demangle(symbol.c_str()));
    return {intern(name), hash_text(symbol, file, offset)};
  }
  // Not in any loaded object (JIT code): the address is all there is.
  return {intern("func"), hash_text("address", {}, reinterpret_cast<std::uintptr_t>(fn))};
}

// A loaded object (the main program or a shared library) as function
// pointers travel: by an id that is the same in every process of the binary.
struct LoadedObject {
  std::uint64_t id;
  std::uintptr_t base;  ///< load bias: function offsets are relative to it
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> code;  ///< executable segments [begin, end)
  std::string name;
  bool ambiguous = false;  ///< another loaded object has the same file name, so the same id

  bool contains(std::uintptr_t address) const noexcept {
    for (auto [begin, end] : code)
      if (address >= begin && address < end) return true;
    return false;
  }
};
using ObjectTable = std::vector<LoadedObject>;

// The main program's id, whatever its file is called on each rank.
constexpr std::uint64_t kMainProgram = 0;

ObjectTable read_loaded_objects() {
  ObjectTable table;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto& objects = *static_cast<ObjectTable*>(data);
        // The main program comes first, with an empty name.
        const bool main_program = objects.empty();
        std::string_view path = info->dlpi_name ? info->dlpi_name : "";
        if (!main_program && path.empty()) return 0;  // the vDSO: no task functions there
        const std::size_t slash = path.rfind('/');
        std::string_view file = slash == std::string_view::npos ? path : path.substr(slash + 1);
        LoadedObject object{main_program ? kMainProgram : XXH3_64bits(file.data(), file.size()),
                            info->dlpi_addr, {},
                            main_program ? std::string("the main program") : std::string(file)};
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
            object.code.emplace_back(info->dlpi_addr + ph.p_vaddr,
                                     info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
        }
        objects.push_back(std::move(object));
        return 0;
      },
      &table);
  for (LoadedObject& a : table)
    for (const LoadedObject& b : table)
      if (&a != &b && a.id == b.id) a.ambiguous = true;
  return table;
}

struct ObjectTables {
  std::mutex mutex;
  std::atomic<const ObjectTable*> current{nullptr};
  /// Every table read: a thread may still be reading an older one.
  std::vector<std::unique_ptr<const ObjectTable>> kept;
};

// The loaded objects, read once, and again when a lookup in `stale` missed
// (a library loaded since).
const ObjectTable& loaded_objects(const ObjectTable* stale = nullptr) {
  static auto* tables = new ObjectTables;  // outlives static destructors
  const ObjectTable* table = tables->current.load(std::memory_order_acquire);
  if (table && table != stale) return *table;
  std::lock_guard lock(tables->mutex);
  table = tables->current.load(std::memory_order_relaxed);
  if (table && table != stale) return *table;
  tables->kept.push_back(std::make_unique<const ObjectTable>(read_loaded_objects()));
  table = tables->kept.back().get();
  tables->current.store(table, std::memory_order_release);
  return *table;
}

template <class Match>
const LoadedObject* find_object(Match match) {
  const ObjectTable& table = loaded_objects();
  for (const LoadedObject& object : table)
    if (match(object)) return &object;
  for (const LoadedObject& object : loaded_objects(&table))
    if (match(object)) return &object;
  return nullptr;
}

std::string hex(std::uint64_t v) {
  char text[19];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(v));
  return text;
}

struct IdentityCache {
  std::shared_mutex mutex;
  std::unordered_map<const void*, std::unique_ptr<FunctionIdentity>> by_address;
};

}  // namespace

const FunctionIdentity& function_identity(const void* fn) {
  // Loops call delayed(f) with the same f again and again: remember the last one.
  thread_local const void* last_fn = nullptr;
  thread_local const FunctionIdentity* last_identity = nullptr;
  if (fn == last_fn) return *last_identity;

  static IdentityCache* cache = new IdentityCache;  // outlives static destructors
  const FunctionIdentity* found = nullptr;
  {
    std::shared_lock lock(cache->mutex);
    auto it = cache->by_address.find(fn);
    if (it != cache->by_address.end()) found = it->second.get();
  }
  if (!found) {
    auto identity = std::make_unique<FunctionIdentity>(resolve(fn));
    std::unique_lock lock(cache->mutex);
    auto [it, inserted] = cache->by_address.emplace(fn, std::move(identity));
    found = it->second.get();
  }
  last_fn = fn;
  last_identity = found;
  return *found;
}

FunctionLocation function_location(const void* fn) {
  const auto address = reinterpret_cast<std::uintptr_t>(fn);
  // The tasks of a graph mostly call functions of one object.
  thread_local const LoadedObject* last = nullptr;
  if (!last || !last->contains(address)) {
    const LoadedObject* found =
        find_object([&](const LoadedObject& o) { return o.contains(address); });
    if (!found)
      throw TypeError("not-serializable",
                      "cannot send the function at " + hex(address) +
                          " to another rank: it is in no loaded object file (generated code?), "
                          "so another process cannot find it");
    last = found;
  }
  if (last->ambiguous)
    throw TypeError("not-serializable",
                    "cannot send the function at " + hex(address) + " to another rank: it is in " +
                        last->name + ", and another loaded object has that file name, so the "
                        "receiver could not tell which was meant");
  return {last->id, address - last->base};
}

const void* function_at(const FunctionLocation& where) {
  thread_local const LoadedObject* last = nullptr;
  if (!last || last->id != where.object) {
    const LoadedObject* found =
        find_object([&](const LoadedObject& o) { return o.id == where.object; });
    if (!found)
      throw TypeError("unknown-function",
                      "cannot find a function of the loaded object with id " + hex(where.object) +
                          ": no object loaded in this process has that id (a library the sender "
                          "loaded and this rank did not?)");
    last = found;
  }
  if (last->ambiguous)
    throw TypeError("id-collision", "cannot find a function of " + last->name +
                                        ": another loaded object has that file name, so this "
                                        "rank cannot tell which was meant");
  const std::uintptr_t address = last->base + where.offset;
  if (!last->contains(address))
    throw ValueError("bad-encoding", "cannot decode a function at offset " + hex(where.offset) +
                                         " of " + last->name + ": that is outside its code");
  return reinterpret_cast<const void*>(address);
}

FunctionIdentity class_identity(const std::type_info& type) {
  std::string demangled = demangle(type);
  std::string name = demangled.find("lambda") != std::string::npos ? "lambda" : short_name(demangled);
  return {intern(name), hash_text("type", type.name())};
}

const InternedName* literal_name(const std::type_info& type) {
  if (type == typeid(std::string)) return intern("string");
  return intern(short_name(demangle(type)));
}

}  // namespace weft::detail
