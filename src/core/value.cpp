#include "weft/value.hpp"

#include "weft/detail/demangle.hpp"
#include "weft/error.hpp"

namespace weft {

Value Value::clone() const {
  Value v;
  if (!type_) return v;
  if (!type_->copy)
    throw TypeError("not-copyable", "cannot copy a value of type '" + type_name() +
                                        "': the result is needed twice but its type is move-only");
  if (type_->stored_inline) {
    type_->copy(v.buf_, buf_);
  } else {
    v.heap_ = type_->heap_copy(heap_);
  }
  v.type_ = type_;
  return v;
}

std::string Value::type_name() const {
  return type_ ? detail::demangle(*type_->type) : std::string("<empty>");
}

void Value::throw_wrong_type(const std::type_info& wanted) const {
  throw TypeError("wrong-type", "a value of type '" + type_name() + "' was read as '" +
                                    detail::demangle(wanted) + "'");
}

}  // namespace weft
