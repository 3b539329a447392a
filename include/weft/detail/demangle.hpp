// weft/detail/demangle.hpp - readable C++ type names for error messages.
#pragma once

#include <string>
#include <typeinfo>

namespace weft::detail {
/// "std::vector<double>" rather than "St6vectorIdSaIdEE".
std::string demangle(const std::type_info& type);
std::string demangle(const char* mangled);
}  // namespace weft::detail
