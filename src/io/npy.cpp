// src/io/npy.cpp - npy stacks (weft/io/npy.hpp): NumPy's .npy format and
// the pickled `info` file dask.array.to_npy_stack writes beside the blocks.
//
// The info pickle is written as protocol 2 opcodes by hand, the dtype as
// NumPy pickles one (GLOBAL numpy.dtype, REDUCE ('f8', False, True), BUILD
// with the state (3, '<', None, None, None, -1, -1, 0)), and read by a small
// pickle machine that knows the opcodes protocols 2-5 use for such a
// dictionary (Python's pickle writes dask's info with protocol 4).
#include "weft/io/npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "blocks.hpp"
#include "posix_file.hpp"
#include "staging.hpp"
#include "weft/collective.hpp"
#include "weft/error.hpp"

namespace weft::io {

namespace detail {

namespace fs = std::filesystem;
using array::Chunks;
using array::DType;
using array::NDArray;
using array::Shape;

constexpr char kNativeOrder = std::endian::native == std::endian::little ? '<' : '>';

// --- dtypes as NumPy spells them ----------------------------------------------

// NumPy's kind character of a dtype ("b1", "i4", "f8", "c16").
char kind_code(DType t) {
  switch (array::dtype_kind(t)) {
    case array::DTypeKind::boolean: return 'b';
    case array::DTypeKind::signed_integer: return 'i';
    case array::DTypeKind::unsigned_integer: return 'u';
    case array::DTypeKind::floating: return 'f';
    case array::DTypeKind::complex: return 'c';
  }
  return '?';
}

std::string short_name(DType t) { return kind_code(t) + std::to_string(array::itemsize(t)); }
char byte_order(DType t) { return array::itemsize(t) == 1 ? '|' : kNativeOrder; }

// A dtype as NumPy's descr string says it: the dtype and whether its bytes
// are in the other order than this machine's.
struct Descr {
  DType dtype = DType::float64;
  bool swapped = false;
};

std::optional<Descr> parse_descr(std::string_view text) {
  char order = '=';
  if (!text.empty() && std::string_view("<>|=").find(text.front()) != std::string_view::npos) {
    order = text.front();
    text.remove_prefix(1);
  }
  if (text.size() < 2) return std::nullopt;
  for (int i = 0; i < 13; ++i) {
    const auto t = static_cast<DType>(i);
    if (short_name(t) == text)
      return Descr{t, array::itemsize(t) > 1 && order != '|' && order != '=' && order != kNativeOrder};
  }
  return std::nullopt;
}

// Reverses the bytes of each number (each half of a complex one).
void swap_bytes(NDArray& a) {
  const std::size_t unit = array::itemsize(a.dtype()) / (array::dtype_kind(a.dtype()) == array::DTypeKind::complex ? 2 : 1);
  auto* bytes = static_cast<unsigned char*>(a.raw_data());
  for (std::size_t at = 0; at < a.nbytes(); at += unit) std::reverse(bytes + at, bytes + at + unit);
}

// --- The .npy format ------------------------------------------------------------

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;

std::string shape_literal(const Shape& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// The header of a C-order .npy file of `dtype` and `shape`: version 1.0 (2.0
// when the dictionary needs more than 64 KiB), padded with spaces so the data
// starts at a multiple of 64 bytes, as numpy.save writes it.
std::string npy_header(DType dtype, const Shape& shape) {
  const std::string dict = "{'descr': '" + std::string(1, byte_order(dtype)) + short_name(dtype) +
                           "', 'fortran_order': False, 'shape': " + shape_literal(shape) + ", }";
  const bool v2 = dict.size() + 1 + kMagicSize + 4 > 65535;
  const std::size_t prefix = kMagicSize + 2 + (v2 ? 4 : 2);
  const std::size_t length = (dict.size() + 1 + prefix + 63) / 64 * 64 - prefix;
  std::string out(kMagic, kMagicSize);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  for (std::size_t i = 0; i < (v2 ? 4u : 2u); ++i) out += static_cast<char>((length >> (8 * i)) & 0xff);
  out += dict;
  out.append(length - dict.size() - 1, ' ');
  out += '\n';
  return out;
}

// What a .npy file's header says.
struct NpyHeader {
  Descr descr;
  bool fortran_order = false;
  Shape shape;
  std::int64_t data_offset = 0;
};

// Reads the Python literal of a .npy header: a dict of strings, booleans and
// tuples of integers (the only values numpy.save writes in it).
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const fs::path& path) : text_(text), path_(path) {}

  NpyHeader parse() {
    NpyHeader out;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (!peek('}')) {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        const std::string descr = string_literal();
        const std::optional<Descr> d = parse_descr(descr);
        if (!d)
          throw TypeError("unsupported-dtype", "from_npy_stack: '" + path_.string() + "' holds '" + descr +
                                                   "' elements, which no weft dtype holds");
        out.descr = *d;
        have_descr = true;
      } else if (key == "fortran_order") {
        out.fortran_order = boolean();
        have_order = true;
      } else if (key == "shape") {
        out.shape = int_tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      if (!peek('}')) expect(',');
    }
    if (!have_descr || !have_order || !have_shape) fail("the header lacks descr, fortran_order or shape");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw IoError("cannot-read", "from_npy_stack: '" + path_.string() + "' is not a .npy file: " + why);
  }
  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\n')) ++at_;
  }
  bool peek(char c) {
    skip_space();
    return at_ < text_.size() && text_[at_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(std::string("expected '") + c + "' in the header");
    ++at_;
  }
  std::string string_literal() {
    skip_space();
    if (at_ >= text_.size() || (text_[at_] != '\'' && text_[at_] != '"')) fail("expected a string in the header");
    const char quote = text_[at_++];
    const std::size_t end = text_.find(quote, at_);
    if (end == std::string_view::npos) fail("unterminated string in the header");
    std::string out(text_.substr(at_, end - at_));
    at_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}})
      if (text_.substr(at_, std::strlen(word)) == word) {
        at_ += std::strlen(word);
        return value;
      }
    fail("expected True or False in the header");
  }
  Shape int_tuple() {
    Shape out;
    expect('(');
    while (!peek(')')) {
      std::size_t used = 0;
      std::int64_t n = 0;
      try {
        n = std::stoll(std::string(text_.substr(at_, 24)), &used);
      } catch (const std::exception&) {
        fail("bad shape in the header");
      }
      at_ += used;
      if (at_ < text_.size() && text_[at_] == 'L') ++at_;  // Python 2's long
      if (n < 0) fail("negative extent in the shape");
      out.push_back(n);
      if (!peek(')')) expect(',');
    }
    ++at_;
    return out;
  }

  std::string_view text_;
  const fs::path& path_;
  std::size_t at_ = 0;
};

// The header of the open .npy file; IoError "cannot-read" naming the path
// when it is not one or its data is cut short.
NpyHeader read_npy_header(const PosixFile& file, std::string_view op) {
  const std::int64_t size = file.size();
  unsigned char prefix[12] = {};
  if (size < 10) throw IoError("cannot-read", std::string(op) + ": '" + file.path().string() + "' is not a .npy file (" +
                                                  std::to_string(size) + " bytes)");
  file.read_at(prefix, size >= 12 ? 12 : 10, 0, op);
  if (std::memcmp(prefix, kMagic, kMagicSize) != 0 || prefix[6] < 1 || prefix[6] > 3)
    throw IoError("cannot-read", std::string(op) + ": '" + file.path().string() +
                                     "' is not a .npy file (no NumPy magic, or an unknown version)");
  const bool v1 = prefix[6] == 1;
  std::size_t length = prefix[8] | (std::size_t{prefix[9]} << 8);
  if (!v1) length |= (std::size_t{prefix[10]} << 16) | (std::size_t{prefix[11]} << 24);
  const std::int64_t start = v1 ? 10 : 12;
  std::string text(length, '\0');
  file.read_at(text.data(), length, start, op);
  NpyHeader header = HeaderParser(text, file.path()).parse();
  header.data_offset = start + static_cast<std::int64_t>(length);
  const std::int64_t end =
      header.data_offset + array::shape_size(header.shape) * static_cast<std::int64_t>(array::itemsize(header.descr.dtype));
  if (size < end)
    throw IoError("cannot-read", std::string(op) + ": '" + file.path().string() + "' is truncated: " +
                                     std::to_string(size) + " bytes, its " + array::shape_str(header.shape) +
                                     " elements end at byte " + std::to_string(end));
  return header;
}

// The header of `path`, which must hold `dtype` elements of `shape` (what the
// stack's info says): IoError "cannot-read" naming the file otherwise.
NpyHeader check_npy_file(const PosixFile& file, DType dtype, const Shape& shape) {
  NpyHeader header = read_npy_header(file, "from_npy_stack");
  if (header.descr.dtype != dtype || header.shape != shape)
    throw IoError("cannot-read", "from_npy_stack: '" + file.path().string() + "' holds " +
                                     std::string(array::dtype_name(header.descr.dtype)) + " " +
                                     array::shape_str(header.shape) + ", but the stack's info says " +
                                     std::string(array::dtype_name(dtype)) + " " + array::shape_str(shape));
  return header;
}

/// What a read task needs: the block's file and what the stack's info says of it.
struct NpyBlockSpec {
  std::string path;
  DType dtype = DType::float64;
  Shape shape;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(path, dtype, shape);
  }
};

// The read task of one block.
NDArray read_npy_block(const NpyBlockSpec& spec) {
  const PosixFile file = PosixFile::open_read(spec.path, "from_npy_stack");
  const NpyHeader header = check_npy_file(file, spec.dtype, spec.shape);
  Shape stored = spec.shape;
  if (header.fortran_order) std::reverse(stored.begin(), stored.end());  // the transpose, in C order
  NDArray out(spec.dtype, stored);
  file.read_at(out.raw_data(), out.nbytes(), header.data_offset, "from_npy_stack");
  if (header.descr.swapped) swap_bytes(out);
  if (!header.fortran_order) return out;
  std::vector<int> reverse(stored.size());
  for (std::size_t i = 0; i < reverse.size(); ++i) reverse[i] = static_cast<int>(reverse.size() - 1 - i);
  return out.transpose(reverse).contiguous();
}

// --- The info pickle --------------------------------------------------------------

// Protocol 2 opcodes, as pickle.dumps(info, 2) writes them less its memo
// stores (pickletools.optimize's output).
class PickleWriter {
 public:
  PickleWriter() { out_ += "\x80\x02"; }
  void op(std::string_view code) { out_ += code; }
  void integer(std::int64_t v) {
    if (v >= 0 && v < 256) {
      out_ += 'K';  // BININT1
      put(v, 1);
    } else if (v >= 0 && v < 65536) {
      out_ += 'M';  // BININT2
      put(v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out_ += 'J';  // BININT
      put(v, 4);
    } else {
      // LONG1: the fewest bytes of two's complement that hold v, as Python.
      int n = 5;
      while (n < 8 && (v >= (std::int64_t{1} << (8 * n - 1)) || v < -(std::int64_t{1} << (8 * n - 1)))) ++n;
      out_ += '\x8a';
      out_ += static_cast<char>(n);
      put(v, n);
    }
  }
  void text(std::string_view s) {
    out_ += 'X';  // BINUNICODE
    put(static_cast<std::int64_t>(s.size()), 4);
    out_ += s;
  }
  // A tuple of the `n` items `items()` writes, as Python writes one:
  // EMPTY_TUPLE, the items and TUPLE1-3, or MARK, the items and TUPLE.
  template <class Items>
  void tuple(std::size_t n, Items&& items) {
    if (n > 3) out_ += '(';
    items();
    out_ += n == 0 ? ')' : n > 3 ? 't' : static_cast<char>(0x84 + n);
  }
  std::string finish() { return out_ + '.'; }

 private:
  void put(std::int64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_ += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
  }
  std::string out_;
};

// pickle.dumps({'chunks': chunks, 'dtype': numpy.dtype(dtype), 'axis': axis}, 2).
std::string info_pickle(const Chunks& chunks, DType dtype, int axis) {
  PickleWriter w;
  w.op("}(");  // EMPTY_DICT, MARK
  w.text("chunks");
  w.tuple(chunks.size(), [&] {
    for (const auto& sizes : chunks)
      w.tuple(sizes.size(), [&] {
        for (const std::int64_t n : sizes) w.integer(n);
      });
  });
  w.text("dtype");
  // numpy.dtype.__reduce__: dtype('f8', False, True), then __setstate__ with
  // (version 3, byte order, subdescr, names, fields, elsize, alignment, flags).
  w.op("cnumpy\ndtype\n");  // GLOBAL
  w.text(short_name(dtype));
  w.op("\x89\x88\x87R(");  // NEWFALSE, NEWTRUE, TUPLE3, REDUCE, MARK
  w.integer(3);
  w.text(std::string(1, byte_order(dtype)));
  w.op("NNN");
  w.integer(-1);
  w.integer(-1);
  w.integer(0);
  w.op("tb");  // TUPLE, BUILD
  w.text("axis");
  w.integer(axis);
  w.op("u");  // SETITEMS
  return w.finish();
}

// A Python value of the info pickle. BUILD sets the state of a REDUCE result
// in place, so values are shared between the stack and the memo.
struct PyValue {
  enum class Kind { none, boolean, integer, text, tuple, dict, global, reduced };
  Kind kind = Kind::none;
  std::int64_t number = 0;
  std::string text;                            // a text; "module.name" of a global
  std::vector<std::shared_ptr<PyValue>> items;  // tuple/list; dict: key, value, ...; reduced: callable, args, state
};
using PyPtr = std::shared_ptr<PyValue>;

// The pickle machine for what Python writes of a dictionary of tuples,
// integers, strings and a NumPy dtype (protocols 2-5); other opcodes are an
// IoError "cannot-read" naming the file and the opcode.
class PickleReader {
 public:
  PickleReader(std::string_view data, const fs::path& path) : data_(data), path_(path) {}

  PyPtr load() {
    while (true) {
      const auto code = static_cast<unsigned char>(byte());
      switch (code) {
        case 0x80: byte(); break;            // PROTO
        case 0x95: bytes(8); break;          // FRAME: a length we need not check
        case '}': push(make(PyValue::Kind::dict)); break;
        case ']': push(make(PyValue::Kind::tuple)); break;  // a list reads as a tuple
        case ')': push(make(PyValue::Kind::tuple)); break;
        case '(': marks_.push_back(stack_.size()); break;
        case 't': case 'l': case 'd': {      // TUPLE, LIST, DICT from the mark
          PyPtr v = make(code == 'd' ? PyValue::Kind::dict : PyValue::Kind::tuple);
          v->items = pop_mark();
          push(v);
          break;
        }
        case 0x85: case 0x86: case 0x87: {   // TUPLE1-3
          PyPtr v = make(PyValue::Kind::tuple);
          const std::size_t n = code - 0x84u;
          need(n);
          v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(v);
          break;
        }
        case 'K': push_int(static_cast<std::int64_t>(unsigned_le(1))); break;
        case 'M': push_int(static_cast<std::int64_t>(unsigned_le(2))); break;
        case 'J': push_int(static_cast<std::int32_t>(unsigned_le(4))); break;
        case 0x8a: {                         // LONG1: n bytes, two's complement
          const std::size_t n = static_cast<unsigned char>(byte());
          if (n > 8) fail("an integer of " + std::to_string(n) + " bytes");
          std::uint64_t v = n ? unsigned_le(n) : 0;
          if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t{0} << (8 * n);
          push_int(static_cast<std::int64_t>(v));
          break;
        }
        case 'N': push(make(PyValue::Kind::none)); break;
        case 0x88: case 0x89: {              // NEWTRUE, NEWFALSE
          PyPtr v = make(PyValue::Kind::boolean);
          v->number = code == 0x88;
          push(v);
          break;
        }
        case 'X': push_text(bytes(unsigned_le(4))); break;     // BINUNICODE
        case 0x8c: case 'U': push_text(bytes(unsigned_le(1))); break;  // SHORT_BINUNICODE, SHORT_BINSTRING
        case 0x8d: case 'T': push_text(bytes(unsigned_le(code == 'T' ? 4 : 8))); break;
        case 'q': memo(unsigned_le(1)); break;      // BINPUT
        case 'r': memo(unsigned_le(4)); break;      // LONG_BINPUT
        case 0x94: memo(memo_.size()); break;       // MEMOIZE
        case 'h': case 'j': {                       // BINGET, LONG_BINGET
          const auto it = memo_.find(unsigned_le(code == 'h' ? 1 : 4));
          if (it == memo_.end()) fail("a memo entry it never stored");
          push(it->second);
          break;
        }
        case 'c': {                                 // GLOBAL "module\nname\n"
          const std::string module = line(), name = line();
          push_global(module + "." + name);
          break;
        }
        case 0x93: {                                // STACK_GLOBAL
          const PyPtr name = pop(), module = pop();
          push_global(module->text + "." + name->text);
          break;
        }
        case 'R': {                                 // REDUCE: callable(*args)
          PyPtr v = make(PyValue::Kind::reduced);
          const PyPtr args = pop(), callable = pop();
          v->items = {callable, args, make(PyValue::Kind::none)};
          push(v);
          break;
        }
        case 'b': {                                 // BUILD: set the state
          const PyPtr state = pop();
          need(1);
          if (stack_.back()->kind != PyValue::Kind::reduced) fail("BUILD of a value that is no object");
          stack_.back()->items[2] = state;
          break;
        }
        case 's': case 'u': case 'a': case 'e': {   // SETITEM(S), APPEND(S)
          std::vector<PyPtr> items;
          if (code == 's') {
            need(2);
            items.assign(stack_.end() - 2, stack_.end());
            stack_.resize(stack_.size() - 2);
          } else if (code == 'a') {
            items.push_back(pop());
          } else {
            items = pop_mark();
          }
          need(1);
          auto& target = stack_.back()->items;
          target.insert(target.end(), items.begin(), items.end());
          break;
        }
        case '.': {                                 // STOP
          if (stack_.size() != 1) fail("a stack of " + std::to_string(stack_.size()) + " values at STOP");
          return stack_.back();
        }
        default: fail("opcode 0x" + hex(code) + ", which a dask npy-stack info does not use");
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw IoError("cannot-read", "from_npy_stack: '" + path_.string() + "' is not a dask npy-stack info pickle: " + why);
  }
  static std::string hex(unsigned code) {
    const char* digits = "0123456789abcdef";
    return {digits[code >> 4], digits[code & 15]};
  }
  static PyPtr make(PyValue::Kind kind) {
    auto v = std::make_shared<PyValue>();
    v->kind = kind;
    return v;
  }
  char byte() {
    if (at_ >= data_.size()) fail("it ends before STOP");
    return data_[at_++];
  }
  std::string bytes(std::uint64_t n) {
    if (n > data_.size() - at_) fail("it ends inside a value");
    std::string out(data_.substr(at_, n));
    at_ += n;
    return out;
  }
  std::uint64_t unsigned_le(std::size_t n) {
    const std::string b = bytes(n);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{static_cast<unsigned char>(b[i])} << (8 * i);
    return v;
  }
  std::string line() {
    const std::size_t end = data_.find('\n', at_);
    if (end == std::string_view::npos) fail("an unterminated GLOBAL");
    const std::size_t length = end - at_;
    return bytes(length + 1).substr(0, length);
  }
  void need(std::size_t n) const {
    const std::size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + n) fail("an opcode without its operands");
  }
  void push(PyPtr v) { stack_.push_back(std::move(v)); }
  PyPtr pop() {
    need(1);
    PyPtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  void push_int(std::int64_t n) {
    PyPtr v = make(PyValue::Kind::integer);
    v->number = n;
    push(v);
  }
  void push_text(std::string s) {
    PyPtr v = make(PyValue::Kind::text);
    v->text = std::move(s);
    push(v);
  }
  void push_global(std::string name) {
    PyPtr v = make(PyValue::Kind::global);
    v->text = std::move(name);
    push(v);
  }
  void memo(std::uint64_t slot) {
    if (stack_.empty()) fail("a memo store of nothing");
    memo_[slot] = stack_.back();
  }
  std::vector<PyPtr> pop_mark() {
    if (marks_.empty()) fail("no MARK");
    const std::size_t from = marks_.back();
    marks_.pop_back();
    std::vector<PyPtr> out(stack_.begin() + static_cast<std::ptrdiff_t>(from), stack_.end());
    stack_.resize(from);
    return out;
  }

  std::string_view data_;
  const fs::path& path_;
  std::size_t at_ = 0;
  std::vector<PyPtr> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, PyPtr> memo_;
};

/// What a stack's info says.
struct StackInfo {
  Chunks chunks;
  DType dtype = DType::float64;
  int axis = 0;
};

StackInfo parse_info(std::string_view data, const fs::path& path) {
  const PyPtr top = PickleReader(data, path).load();
  const auto fail = [&](const std::string& why) {
    return IoError("cannot-read", "from_npy_stack: '" + path.string() + "' is not a dask npy-stack info: " + why);
  };
  if (top->kind != PyValue::Kind::dict) throw fail("it holds no dictionary");
  const auto entry = [&](const std::string& key) {
    for (std::size_t i = 0; i + 1 < top->items.size(); i += 2)
      if (top->items[i]->kind == PyValue::Kind::text && top->items[i]->text == key) return top->items[i + 1];
    throw fail("it has no '" + key + "'");
  };
  StackInfo info;
  const PyPtr chunks = entry("chunks");
  if (chunks->kind != PyValue::Kind::tuple) throw fail("'chunks' is no tuple");
  for (const PyPtr& axis : chunks->items) {
    if (axis->kind != PyValue::Kind::tuple) throw fail("'chunks' is not a tuple of tuples");
    std::vector<std::int64_t> sizes;
    for (const PyPtr& n : axis->items) {
      if (n->kind != PyValue::Kind::integer || n->number < 0) throw fail("'chunks' holds something other than sizes");
      sizes.push_back(n->number);
    }
    info.chunks.push_back(std::move(sizes));
  }
  const PyPtr axis = entry("axis");
  if (axis->kind != PyValue::Kind::integer) throw fail("'axis' is no integer");
  info.axis = static_cast<int>(axis->number);
  const PyPtr dtype = entry("dtype");
  if (dtype->kind != PyValue::Kind::reduced || dtype->items[0]->text != "numpy.dtype" ||
      dtype->items[1]->kind != PyValue::Kind::tuple || dtype->items[1]->items.empty() ||
      dtype->items[1]->items[0]->kind != PyValue::Kind::text)
    throw fail("'dtype' is no numpy.dtype");
  std::string descr = dtype->items[1]->items[0]->text;
  const PyPtr& state = dtype->items[2];
  if (state->kind == PyValue::Kind::tuple && state->items.size() > 1 && state->items[1]->kind == PyValue::Kind::text)
    descr = state->items[1]->text + descr;
  const std::optional<Descr> d = parse_descr(descr);
  if (!d)
    throw TypeError("unsupported-dtype", "from_npy_stack: '" + path.string() + "' says the stack holds '" + descr +
                                             "' elements, which no weft dtype holds");
  info.dtype = d->dtype;
  return info;
}

// --- Writing ------------------------------------------------------------------------

/// A whole to_npy_stack, as every writing rank sees it.
struct NpyStackPlan {
  std::string target;
  std::string token;
  Chunks chunks;  // the rechunked array's: one block on every axis but `axis`
  DType dtype = DType::float64;
  int axis = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(target, token, chunks, dtype, axis);
  }
  // The token is fresh for every write: it names the write.
  void tokenize(Hasher& h) const { tokenize_into(h, token); }
};

// Writes one block as `file` (inside the staged folder) through a temporary
// name of its own, synced before it is renamed.
void write_npy_file(const fs::path& file, const NDArray& block, const NpyStackPlan& plan) {
  StagedFile stage(file, plan.token);
  const NDArray data = block.astype(plan.dtype);  // contiguous
  const std::string header = npy_header(plan.dtype, data.shape());
  PosixFile out = PosixFile::open_write(stage.temporary(), O_CREAT | O_EXCL, "npy stack", plan.target);
  out.write_at(header.data(), header.size(), 0);
  out.write_at(data.raw_data(), data.nbytes(), static_cast<std::int64_t>(header.size()));
  out.close();
  stage.commit("npy stack");
}

// The step: every rank writes the blocks it holds into the staged folder
// (rank 0 the info too); rank 0 renames the folder once all succeeded.
void write_npy_stack_step(const CollectiveContext& ctx, const LocalParts<NDArray>& mine, const NpyStackPlan& plan) {
  StagedFolder stage(plan.target, plan.token);
  write_staged(ctx, stage, "npy stack", [&] {
    stage.create("npy stack");
    const ArrayBlocks blocks(plan.chunks, 0);
    for (std::size_t i = 0; i < mine.index.size(); ++i) {
      const std::size_t part = mine.index[i];  // the block's place along the axis: the only axis cut
      blocks.checked_extent(blocks.index(part), *mine.values[i], "to_npy_stack: '" + plan.target + "'");
      write_npy_file(stage.temporary() / (std::to_string(part) + ".npy"), *mine.values[i], plan);
    }
    if (ctx.rank == 0)
      weft::detail::write_file_atomically(stage.temporary() / "info", info_pickle(plan.chunks, plan.dtype, plan.axis),
                                          "npy stack info");
  });
}

}  // namespace detail

void to_npy_stack(const std::string& dirname, const array::Array& x, int axis, const NpyWriteOptions& options,
                  const ComputeOptions& compute) {
  using namespace detail;
  const int ndim = static_cast<int>(x.ndim());
  if (axis < -ndim || axis >= ndim)
    throw ValueError("bad-axis", "to_npy_stack: axis " + std::to_string(axis) + " is out of bounds for an array of " +
                                     std::to_string(ndim) + " dimensions");
  if (axis < 0) axis += ndim;
  if (array::has_unknown(x.chunks()))
    throw ValueError("unknown-chunks", "to_npy_stack: the array has unknown chunk sizes " +
                                           array::chunks_str(x.chunks()) + "; call compute_chunk_sizes first");
  NpyStackPlan plan;
  plan.target = check_output_folder(dirname, options.overwrite, "to_npy_stack").string();
  plan.token = staging_token();
  plan.dtype = x.dtype();
  plan.axis = axis;
  // One block on every other axis, as dask.array.to_npy_stack rechunks.
  plan.chunks = x.chunks();
  for (int a = 0; a < ndim; ++a)
    if (a != axis) plan.chunks[static_cast<std::size_t>(a)] = {x.shape()[static_cast<std::size_t>(a)]};
  const array::Array blocks = plan.chunks == x.chunks() ? x : x.rechunk(plan.chunks);
  partitioned_collective(&write_npy_stack_step, DelayedOptions{.name = "to-npy-stack", .pure = false})(
      array::to_delayed(blocks), plan)
      .compute(compute);
}

// --- Reading ------------------------------------------------------------------------

array::Array from_npy_stack(const std::string& dirname) {
  using namespace detail;
  const fs::path folder = fs::absolute(dirname).lexically_normal();
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw IoError("cannot-open", "from_npy_stack: '" + dirname + "' " +
                                     (fs::exists(folder, ec) ? "is not a folder" : "does not exist"));
  const fs::path info_path = folder / "info";
  const PosixFile info_file = PosixFile::open_read(info_path, "from_npy_stack");
  std::string data(static_cast<std::size_t>(info_file.size()), '\0');
  info_file.read_at(data.data(), data.size(), 0, "from_npy_stack");
  const StackInfo info = parse_info(data, info_path);
  const auto bad = [&](const std::string& why) {
    return IoError("cannot-read", "from_npy_stack: '" + info_path.string() + "' is not a dask npy-stack info: " + why);
  };
  const int ndim = static_cast<int>(info.chunks.size());
  if (info.axis < 0 || info.axis >= ndim)
    throw bad("axis " + std::to_string(info.axis) + " of " + std::to_string(ndim) + " axes");
  Shape shape;
  for (int a = 0; a < ndim; ++a) {
    const auto& sizes = info.chunks[static_cast<std::size_t>(a)];
    if (a != info.axis && sizes.size() != 1) throw bad("the stack is cut along axis " + std::to_string(a) + " too");
    std::int64_t total = 0;
    for (const std::int64_t n : sizes) total += n;
    shape.push_back(total);
  }
  // Every block file is checked now, so a missing or mismatched one fails
  // before any task exists; the tasks check again (the files may change).
  const std::vector<std::int64_t>& along = info.chunks[static_cast<std::size_t>(info.axis)];
  std::vector<NpyBlockSpec> specs;
  Hasher stamps;
  for (std::size_t i = 0; i < along.size(); ++i) {
    NpyBlockSpec spec{(folder / (std::to_string(i) + ".npy")).string(), info.dtype, shape};
    spec.shape[static_cast<std::size_t>(info.axis)] = along[i];
    const PosixFile file = PosixFile::open_read(spec.path, "from_npy_stack");
    check_npy_file(file, spec.dtype, spec.shape);
    struct stat st {};
    ::stat(spec.path.c_str(), &st);
    // A rewritten file makes another array.
    tokenize_into(stamps, static_cast<std::int64_t>(st.st_ino));
    tokenize_into(stamps, static_cast<std::int64_t>(st.st_size));
    tokenize_into(stamps, static_cast<std::int64_t>(st.st_mtim.tv_sec));
    tokenize_into(stamps, static_cast<std::int64_t>(st.st_mtim.tv_nsec));
    specs.push_back(std::move(spec));
  }
  const Token token = array::detail::op_token("from-npy-stack", folder.string(), info.chunks, info.dtype,
                                              stamps.digest().hex());
  const int axis = info.axis;
  return array::make_array(array::detail::ArrayMeta{"from-npy-stack", token, shape, info.chunks, info.dtype},
                           [specs, axis](std::span<const std::int64_t> index, Key key) {
                             return weft::detail::make_call_task(std::move(key), false, &detail::read_npy_block,
                                                                 specs[static_cast<std::size_t>(index[axis])]);
                           });
}

}  // namespace weft::io
