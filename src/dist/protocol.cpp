// Batches of operations: writing and checked reading.
#include "protocol.hpp"

namespace weft::dist {

void BatchWriter::value(const Value& v, std::shared_ptr<const void> owner) {
  Encoded e = encode(v);
  bytes(e.header);
  put(static_cast<std::uint32_t>(e.buffers.size()));
  for (std::span<const std::byte> b : e.buffers) buffers_.push_back(b);
  if (!e.buffers.empty()) owners_.push_back(std::move(owner));
  if (e.keep_alive) owners_.push_back(std::move(e.keep_alive));
}

BatchWriter::Parts BatchWriter::take() {
  Parts p{std::move(body_), std::move(buffers_), nullptr};
  if (owners_.size() == 1) {
    p.keep_alive = std::move(owners_.front());
  } else if (!owners_.empty()) {
    p.keep_alive = std::make_shared<std::vector<std::shared_ptr<const void>>>(std::move(owners_));
  }
  body_.clear();
  buffers_.clear();
  owners_.clear();
  return p;
}

Op BatchReader::op() {
  auto code = get<std::uint8_t>();
  if (code < static_cast<std::uint8_t>(Op::compute) || code >= static_cast<std::uint8_t>(Op::end_))
    fail("operation code " + std::to_string(code) + " is unknown");
  return static_cast<Op>(code);
}

Value BatchReader::value() {
  std::span<const std::byte> header = bytes();
  auto nbuffers = get<std::uint32_t>();
  if (nbuffers > buffers_.size() - next_buffer_)
    fail("a value names " + std::to_string(nbuffers) + " buffers, " +
         std::to_string(buffers_.size() - next_buffer_) + " are left");
  std::vector<std::span<const std::byte>> parts;
  parts.reserve(nbuffers);
  for (std::uint32_t i = 0; i < nbuffers; ++i) parts.emplace_back(buffers_[next_buffer_++]);
  return decode(header, parts);
}

void BatchReader::fail(const std::string& problem) const {
  throw RuntimeError("bad-message", "a message from rank " + std::to_string(source_) +
                                        " is malformed: " + problem);
}

}  // namespace weft::dist
