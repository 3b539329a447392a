#include "weft/detail/demangle.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

namespace weft::detail {

std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

std::string demangle(const std::type_info& type) { return demangle(type.name()); }

}  // namespace weft::detail
