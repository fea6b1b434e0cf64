// IR text form: the printer and the recursive-descent parser (grammar in ir/text.h).
#include "ir/text.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "ir/op_schema.h"

namespace seqrun {

// ------------------------------------------------------------------------------------------------
// Printer
// ------------------------------------------------------------------------------------------------
namespace {

bool is_plain_ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string value_ref(const Value* v) {
  if (v == nullptr) return "_";
  const std::string& n = v->name();
  bool plain = !n.empty() && n != "_";
  for (char c : n) plain = plain && is_plain_ident_char(c);
  return "%" + (plain ? n : quote(n));
}

std::string format_float(double v, bool is_double) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof(buf), is_double ? "%.17g" : "%.9g", v);
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string format_element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::f32:
    case DType::f16:
    case DType::bf16:
      return format_float(t.get_f64(i), false);
    case DType::f64:
      return format_float(t.get_f64(i), true);
    case DType::u64:
      return std::to_string(t.data<uint64_t>()[i]);
    default:
      return std::to_string(t.get_i64(i));
  }
}

std::string format_tensor_values(const Tensor& t, const PrintOptions& options) {
  if (!options.print_weights && t.numel() > options.inline_limit_elements) {
    return "<elided " + std::to_string(t.nbytes()) + " bytes>";
  }
  std::string s = "[";
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (i) s += ", ";
    s += format_element(t, i);
  }
  return s + "]";
}

std::string shape_type(DType dtype, const Shape& shape) {
  return TensorType::from_shape(dtype, shape).to_string();
}

class Printer {
 public:
  explicit Printer(const PrintOptions& options) : options_(options) {}

  void graph(const Graph& g, int indent) {
    out_ += "graph " + (g.name().empty() ? std::string("main") : name_token(g.name())) + "(";
    for (size_t i = 0; i < g.inputs().size(); ++i) {
      if (i) out_ += ", ";
      out_ += value_ref(g.inputs()[i]) + ": " + g.inputs()[i]->type().to_string();
    }
    out_ += ")";
    if (!g.captures().empty()) {
      out_ += " captures(";
      for (size_t i = 0; i < g.captures().size(); ++i) {
        if (i) out_ += ", ";
        out_ += value_ref(g.captures()[i]) + ": " + g.captures()[i]->type().to_string();
      }
      out_ += ")";
    }
    out_ += " {\n";
    std::string pad(static_cast<size_t>(indent + 2), ' ');
    for (const Value* c : g.constants()) {
      out_ += pad + value_ref(c) + " = const " + shape_type(c->constant().dtype(), c->constant().shape()) +
              " " + format_tensor_values(c->constant(), options_) + "\n";
    }
    for (const Node* n : g.nodes()) node(*n, indent + 2);
    out_ += pad + "return";
    for (size_t i = 0; i < g.outputs().size(); ++i) out_ += (i ? ", " : " ") + value_ref(g.outputs()[i]);
    out_ += "\n" + std::string(static_cast<size_t>(indent), ' ') + "}";
  }

  std::string take() { return std::move(out_); }

 private:
  static std::string name_token(const std::string& n) {
    bool plain = !n.empty() && !std::isdigit(static_cast<unsigned char>(n[0]));
    for (char c : n) plain = plain && is_plain_ident_char(c);
    return plain ? n : quote(n);
  }

  void node(const Node& n, int indent) {
    out_ += std::string(static_cast<size_t>(indent), ' ');
    for (int i = 0; i < n.num_outputs(); ++i) out_ += (i ? ", " : "") + value_ref(n.output(i));
    out_ += " = " + n.op() + "(";
    for (int i = 0; i < n.num_explicit_inputs(); ++i) out_ += (i ? ", " : "") + value_ref(n.input(i));
    out_ += ")";
    if (n.num_captures() > 0) {
      out_ += " captures(";
      for (int i = n.num_explicit_inputs(); i < n.num_inputs(); ++i) {
        out_ += (i > n.num_explicit_inputs() ? ", " : "") + value_ref(n.input(i));
      }
      out_ += ")";
    }
    if (!n.attrs().empty()) {
      out_ += " {";
      bool first = true;
      for (const auto& [key, a] : n.attrs()) {
        out_ += (first ? "" : ", ") + name_token(key) + " = ";
        first = false;
        attribute(a, indent);
      }
      out_ += "}";
    }
    out_ += " :";
    for (int i = 0; i < n.num_outputs(); ++i) out_ += (i ? ", " : " ") + n.output(i)->type().to_string();
    if (!n.name().empty()) out_ += " loc(" + quote(n.name()) + ")";
    out_ += "\n";
  }

  void attribute(const Attribute& a, int indent) {
    switch (a.type()) {
      case AttrType::Int:
        out_ += std::to_string(a.i());
        break;
      case AttrType::Float:
        out_ += format_float(a.f(), false);
        break;
      case AttrType::String:
        out_ += quote(a.s());
        break;
      case AttrType::Ints:
        if (a.ints().empty()) {
          out_ += "ints[]";
          break;
        }
        out_ += "[";
        for (size_t i = 0; i < a.ints().size(); ++i) out_ += (i ? ", " : "") + std::to_string(a.ints()[i]);
        out_ += "]";
        break;
      case AttrType::Floats:
        if (a.floats().empty()) {
          out_ += "floats[]";
          break;
        }
        out_ += "[";
        for (size_t i = 0; i < a.floats().size(); ++i)
          out_ += (i ? ", " : "") + format_float(a.floats()[i], false);
        out_ += "]";
        break;
      case AttrType::Strings:
        if (a.strings().empty()) {
          out_ += "strings[]";
          break;
        }
        out_ += "[";
        for (size_t i = 0; i < a.strings().size(); ++i) out_ += (i ? ", " : "") + quote(a.strings()[i]);
        out_ += "]";
        break;
      case AttrType::Tensor:
        out_ += "tensor<" + shape_type(a.tensor().dtype(), a.tensor().shape()) + "> " +
                format_tensor_values(a.tensor(), options_);
        break;
      case AttrType::Graph:
        graph(*a.graph(), indent);
        break;
    }
  }

  const PrintOptions& options_;
  std::string out_;
};

}  // namespace

std::string print_graph(const Graph& graph, const PrintOptions& options) {
  Printer p(options);
  p.graph(graph, 0);
  return p.take() + "\n";
}

// ------------------------------------------------------------------------------------------------
// Parser
// ------------------------------------------------------------------------------------------------
namespace {

enum class Tok { End, Ident, ValueName, Int, Float, String, Punct };

struct Token {
  Tok kind = Tok::End;
  std::string text;  // identifier / name / string contents / punctuation / number literal
  int line = 1;
  int column = 1;
};

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  Result<Token> next() {
    skip_space();
    Token t;
    t.line = line_;
    t.column = column_;
    if (pos_ >= src_.size()) return t;
    char c = src_[pos_];
    if (c == '%') {
      advance();
      t.kind = Tok::ValueName;
      if (pos_ < src_.size() && src_[pos_] == '"') {
        SEQRUN_ASSIGN(t.text, string_literal());
      } else {
        while (pos_ < src_.size() && is_plain_ident_char(src_[pos_])) t.text += advance();
        if (t.text.empty()) return error_at(t, "expected a value name after '%'");
      }
      return t;
    }
    if (c == '"') {
      t.kind = Tok::String;
      SEQRUN_ASSIGN(t.text, string_literal());
      return t;
    }
    bool negative_number = c == '-' && pos_ + 1 < src_.size() &&
                           (std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])) ||
                            src_.substr(pos_ + 1, 3) == "inf" || src_[pos_ + 1] == '.');
    if (std::isdigit(static_cast<unsigned char>(c)) || negative_number) return number(t);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < src_.size() && is_plain_ident_char(src_[pos_])) t.text += advance();
      if (t.text == "_") {
        t.kind = Tok::Punct;
      } else if (t.text == "nan" || t.text == "inf") {
        t.kind = Tok::Float;
      } else {
        t.kind = Tok::Ident;
      }
      return t;
    }
    if (std::string_view("(){}[]<>,=:?*").find(c) != std::string_view::npos) {
      t.kind = Tok::Punct;
      t.text = std::string(1, advance());
      return t;
    }
    return error_at(t, std::string("unexpected character '") + c + "'");
  }

  static Status error_at(const Token& t, const std::string& message) {
    return make_error("line {}, column {}: {}", t.line, t.column, message);
  }

 private:
  char advance() {
    char c = src_[pos_++];
    if (c == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    return c;
  }

  void skip_space() {
    while (pos_ < src_.size()) {
      char c = src_[pos_];
      if (c == '#' ||
          (c == '/' && pos_ + 1 < src_.size() && src_[pos_ + 1] == '/')) {  // comment to end of line
        while (pos_ < src_.size() && src_[pos_] != '\n') advance();
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        advance();
      } else {
        break;
      }
    }
  }

  Result<std::string> string_literal() {
    Token start;
    start.line = line_;
    start.column = column_;
    advance();  // opening quote
    std::string s;
    while (true) {
      if (pos_ >= src_.size()) return error_at(start, "unterminated string");
      char c = advance();
      if (c == '"') break;
      if (c != '\\') {
        s += c;
        continue;
      }
      if (pos_ >= src_.size()) return error_at(start, "unterminated string");
      char e = advance();
      if (e == 'n') {
        s += '\n';
      } else if (e == 't') {
        s += '\t';
      } else if (e == 'x') {
        if (pos_ + 2 > src_.size()) return error_at(start, "bad \\x escape");
        std::string hex{advance(), advance()};
        char* end = nullptr;
        long v = std::strtol(hex.c_str(), &end, 16);
        if (end != hex.c_str() + 2) return error_at(start, "bad \\x escape");
        s += static_cast<char>(v);
      } else {
        s += e;
      }
    }
    return s;
  }

  Result<Token> number(Token t) {
    bool is_float = false;
    if (src_[pos_] == '-') t.text += advance();
    if (src_.substr(pos_, 3) == "inf") {
      t.text += "inf";
      for (int i = 0; i < 3; ++i) advance();
      t.kind = Tok::Float;
      return t;
    }
    while (pos_ < src_.size()) {
      char c = src_[pos_];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        t.text += advance();
      } else if (c == '.') {
        is_float = true;
        t.text += advance();
      } else if (c == 'e' || c == 'E') {
        is_float = true;
        t.text += advance();
        if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) t.text += advance();
      } else {
        break;
      }
    }
    t.kind = is_float ? Tok::Float : Tok::Int;
    return t;
  }

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
};

double parse_double(const std::string& text) {
  if (text == "nan") return std::nan("");
  if (text == "inf") return INFINITY;
  if (text == "-inf") return -INFINITY;
  return std::strtod(text.c_str(), nullptr);
}

class Parser {
 public:
  explicit Parser(std::string_view src) : lex_(src) {}

  Result<std::unique_ptr<Graph>> parse_top() {
    SEQRUN_TRY(advance());
    SEQRUN_ASSIGN(auto g, parse_graph_def());
    if (tok_.kind != Tok::End) return error("unexpected text after the graph");
    return g;
  }

 private:
  Status advance() {
    auto t = lex_.next();
    if (!t) return t.status();
    tok_ = std::move(t).value();
    return Status::ok();
  }
  Status error(const std::string& message) const { return Lexer::error_at(tok_, message); }
  bool at_punct(const char* p) const { return tok_.kind == Tok::Punct && tok_.text == p; }
  bool at_ident(const char* word) const { return tok_.kind == Tok::Ident && tok_.text == word; }
  Status expect_punct(const char* p) {
    if (!at_punct(p)) return error(std::string("expected '") + p + "', found '" + tok_.text + "'");
    return advance();
  }

  Result<std::string> expect_name_token() {
    if (tok_.kind != Tok::Ident && tok_.kind != Tok::String) return error("expected a name");
    std::string s = tok_.text;
    SEQRUN_TRY(advance());
    return s;
  }

  Result<TensorType> parse_type() {
    DType dtype = DType::undefined;
    if (at_punct("?")) {
      SEQRUN_TRY(advance());
    } else {
      if (tok_.kind != Tok::Ident) return error("expected a dtype, found '" + tok_.text + "'");
      auto d = dtype_from_name(tok_.text);
      if (!d) return error("unknown dtype '" + tok_.text + "'");
      dtype = *d;
      SEQRUN_TRY(advance());
    }
    SEQRUN_TRY(expect_punct("["));
    if (at_punct("*")) {
      SEQRUN_TRY(advance());
      SEQRUN_TRY(expect_punct("]"));
      return TensorType::unknown_rank(dtype);
    }
    std::vector<Dim> dims;
    while (!at_punct("]")) {
      if (!dims.empty()) SEQRUN_TRY(expect_punct(","));
      if (tok_.kind == Tok::Int) {
        dims.emplace_back(static_cast<int64_t>(std::strtoll(tok_.text.c_str(), nullptr, 10)));
      } else if (tok_.kind == Tok::Ident) {
        dims.push_back(Dim::symbol(tok_.text));
      } else if (at_punct("?")) {
        dims.push_back(Dim::unknown());
      } else {
        return error("expected a dimension, found '" + tok_.text + "'");
      }
      SEQRUN_TRY(advance());
    }
    SEQRUN_TRY(advance());
    return TensorType(dtype, std::move(dims));
  }

  // "[v, v, ...]" into a tensor of the given static type.
  Result<Tensor> parse_tensor_values(const TensorType& type) {
    auto shape = type.static_shape();
    if (!shape || type.dtype() == DType::undefined)
      return error("a constant needs a static shape and a dtype");
    SEQRUN_ASSIGN(int64_t n, checked_num_elements(*shape, dtype_size(type.dtype()), uint64_t{1} << 32));
    if (at_punct("<")) return error("elided weights cannot be parsed (print with weights)");
    SEQRUN_TRY(expect_punct("["));
    Tensor f64 = Tensor::empty(DType::f64, *shape);
    Tensor i64 = Tensor::empty(DType::i64, *shape);
    bool integral = !is_float(type.dtype());
    int64_t count = 0;
    while (!at_punct("]")) {
      if (count > 0) SEQRUN_TRY(expect_punct(","));
      if (tok_.kind != Tok::Int && tok_.kind != Tok::Float) return error("expected a number");
      if (count >= n) return error("more values than the shape " + type.to_string() + " holds");
      if (integral) {
        if (tok_.kind != Tok::Int) return error("expected an integer for " + type.to_string());
        i64.data<int64_t>()[count] = static_cast<int64_t>(std::strtoull(tok_.text.c_str(), nullptr, 10));
        if (tok_.text[0] == '-') i64.data<int64_t>()[count] = std::strtoll(tok_.text.c_str(), nullptr, 10);
      } else {
        f64.data<double>()[count] = parse_double(tok_.text);
      }
      ++count;
      SEQRUN_TRY(advance());
    }
    SEQRUN_TRY(advance());
    if (count != n) {
      return error(fmt::format("{} values for {} ({} expected)", count, type.to_string(), n));
    }
    if (type.dtype() == DType::u64) {  // keep full 64-bit range
      Tensor t = Tensor::empty(DType::u64, *shape);
      for (int64_t i = 0; i < n; ++i) t.data<uint64_t>()[i] = static_cast<uint64_t>(i64.data<int64_t>()[i]);
      return t;
    }
    return integral ? i64.cast(type.dtype()) : f64.cast(type.dtype());
  }

  Result<Attribute> parse_attribute(Graph& owner) {
    if (tok_.kind == Tok::Int) {
      int64_t v = std::strtoll(tok_.text.c_str(), nullptr, 10);
      SEQRUN_TRY(advance());
      return Attribute(v);
    }
    if (tok_.kind == Tok::Float) {
      double v = parse_double(tok_.text);
      SEQRUN_TRY(advance());
      return Attribute(static_cast<float>(v));
    }
    if (tok_.kind == Tok::String) {
      std::string s = tok_.text;
      SEQRUN_TRY(advance());
      return Attribute(std::move(s));
    }
    if (at_ident("ints") || at_ident("floats") || at_ident("strings")) {
      std::string kind = tok_.text;
      SEQRUN_TRY(advance());
      SEQRUN_TRY(expect_punct("["));
      SEQRUN_TRY(expect_punct("]"));
      if (kind == "ints") return Attribute(std::vector<int64_t>{});
      if (kind == "floats") return Attribute(std::vector<float>{});
      return Attribute(std::vector<std::string>{});
    }
    if (at_ident("tensor")) {
      SEQRUN_TRY(advance());
      SEQRUN_TRY(expect_punct("<"));
      SEQRUN_ASSIGN(TensorType type, parse_type());
      SEQRUN_TRY(expect_punct(">"));
      SEQRUN_ASSIGN(Tensor t, parse_tensor_values(type));
      return Attribute(std::move(t));
    }
    if (at_ident("graph")) {
      SEQRUN_ASSIGN(auto body, parse_graph_def(&owner));
      return Attribute(std::shared_ptr<Graph>(std::move(body)));
    }
    if (at_punct("[")) {
      SEQRUN_TRY(advance());
      std::vector<int64_t> ints;
      std::vector<float> floats;
      std::vector<std::string> strings;
      Tok kind = Tok::End;
      while (!at_punct("]")) {
        if (kind != Tok::End) SEQRUN_TRY(expect_punct(","));
        Tok k = tok_.kind;
        if (k != Tok::Int && k != Tok::Float && k != Tok::String) return error("expected a list element");
        if (kind == Tok::End) kind = k;
        if (k != kind) return error("list elements must all be ints, floats or strings");
        if (k == Tok::Int) ints.push_back(std::strtoll(tok_.text.c_str(), nullptr, 10));
        if (k == Tok::Float) floats.push_back(static_cast<float>(parse_double(tok_.text)));
        if (k == Tok::String) strings.push_back(tok_.text);
        SEQRUN_TRY(advance());
      }
      SEQRUN_TRY(advance());
      if (kind == Tok::Float) return Attribute(std::move(floats));
      if (kind == Tok::String) return Attribute(std::move(strings));
      return Attribute(std::move(ints));
    }
    return error("expected an attribute value, found '" + tok_.text + "'");
  }

  Result<Value*> lookup(Graph& g, const std::string& name) {
    Value* v = g.find_value(name);
    if (v == nullptr) return error("value '%" + name + "' is not defined");
    if (v->producer() == nullptr && v->role() == Value::Role::Intermediate) {
      return error("value '%" + name + "' is used before it is defined");
    }
    return v;
  }

  Result<std::vector<Value*>> parse_operand_list(Graph& g) {
    SEQRUN_TRY(expect_punct("("));
    std::vector<Value*> vals;
    while (!at_punct(")")) {
      if (!vals.empty()) SEQRUN_TRY(expect_punct(","));
      if (at_punct("_")) {
        vals.push_back(nullptr);
        SEQRUN_TRY(advance());
        continue;
      }
      if (tok_.kind != Tok::ValueName) return error("expected an operand, found '" + tok_.text + "'");
      SEQRUN_ASSIGN(Value * v, lookup(g, tok_.text));
      vals.push_back(v);
      SEQRUN_TRY(advance());
    }
    SEQRUN_TRY(advance());
    return vals;
  }

  Status declare(Graph& g, const std::string& name) {
    if (g.find_value(name) != nullptr) return error("value '%" + name + "' is defined twice");
    return Status::ok();
  }

  // graph NAME(%a: T, ...) [captures(%c: T, ...)] { statements }
  Result<std::unique_ptr<Graph>> parse_graph_def(Graph* parent = nullptr) {
    (void)parent;
    if (!at_ident("graph")) return error("expected 'graph'");
    SEQRUN_TRY(advance());
    SEQRUN_ASSIGN(std::string name, expect_name_token());
    auto g = std::make_unique<Graph>(name);
    for (int section = 0; section < 2; ++section) {
      if (section == 1) {
        if (!at_ident("captures")) break;
        SEQRUN_TRY(advance());
      }
      SEQRUN_TRY(expect_punct("("));
      bool first = true;
      while (!at_punct(")")) {
        if (!first) SEQRUN_TRY(expect_punct(","));
        first = false;
        if (tok_.kind != Tok::ValueName) return error("expected a value name");
        std::string vname = tok_.text;
        SEQRUN_TRY(declare(*g, vname));
        SEQRUN_TRY(advance());
        SEQRUN_TRY(expect_punct(":"));
        SEQRUN_ASSIGN(TensorType type, parse_type());
        if (section == 0) {
          g->add_input(vname, type);
        } else {
          g->add_capture(vname, type);
        }
      }
      SEQRUN_TRY(advance());
    }
    SEQRUN_TRY(expect_punct("{"));
    while (!at_punct("}")) {
      if (tok_.kind == Tok::End) return error("unterminated graph body (missing '}')");
      if (at_ident("return")) {
        SEQRUN_TRY(advance());
        std::vector<Value*> outs;
        while (tok_.kind == Tok::ValueName) {
          SEQRUN_ASSIGN(Value * v, lookup(*g, tok_.text));
          outs.push_back(v);
          SEQRUN_TRY(advance());
          if (!at_punct(",")) break;
          SEQRUN_TRY(advance());
        }
        g->set_outputs(std::move(outs));
        continue;
      }
      SEQRUN_TRY(parse_statement(*g));
    }
    SEQRUN_TRY(advance());
    return g;
  }

  Status parse_statement(Graph& g) {
    std::vector<std::string> results;
    while (true) {
      if (tok_.kind != Tok::ValueName)
        return error("expected a result name or 'return', found '" + tok_.text + "'");
      SEQRUN_TRY(declare(g, tok_.text));
      for (const auto& r : results) {
        if (r == tok_.text) return error("value '%" + r + "' is defined twice");
      }
      results.push_back(tok_.text);
      SEQRUN_TRY(advance());
      if (at_punct("=")) break;
      SEQRUN_TRY(expect_punct(","));
    }
    SEQRUN_TRY(advance());  // '='
    if (at_ident("const")) {
      if (results.size() != 1) return error("a const defines exactly one value");
      SEQRUN_TRY(advance());
      SEQRUN_ASSIGN(TensorType type, parse_type());
      SEQRUN_ASSIGN(Tensor t, parse_tensor_values(type));
      g.add_constant(results[0], std::move(t));
      return Status::ok();
    }
    if (tok_.kind != Tok::Ident) return error("expected an op name, found '" + tok_.text + "'");
    std::string op = tok_.text;
    if (OpRegistry::global().find(op) == nullptr) return error("unknown op '" + op + "'");
    SEQRUN_TRY(advance());
    SEQRUN_ASSIGN(std::vector<Value*> inputs, parse_operand_list(g));
    std::vector<Value*> captures;
    if (at_ident("captures")) {
      SEQRUN_TRY(advance());
      SEQRUN_ASSIGN(captures, parse_operand_list(g));
    }
    std::map<std::string, Attribute> attrs;
    if (at_punct("{")) {
      SEQRUN_TRY(advance());
      while (!at_punct("}")) {
        if (!attrs.empty()) SEQRUN_TRY(expect_punct(","));
        SEQRUN_ASSIGN(std::string key, expect_name_token());
        SEQRUN_TRY(expect_punct("="));
        SEQRUN_ASSIGN(Attribute a, parse_attribute(g));
        if (attrs.count(key)) return error("attribute '" + key + "' given twice");
        attrs[key] = std::move(a);
      }
      SEQRUN_TRY(advance());
    }
    SEQRUN_TRY(expect_punct(":"));
    std::vector<TensorType> types;
    for (size_t i = 0; i < results.size(); ++i) {
      if (i) SEQRUN_TRY(expect_punct(","));
      SEQRUN_ASSIGN(TensorType t, parse_type());
      types.push_back(std::move(t));
    }
    std::string loc;
    if (at_ident("loc")) {
      SEQRUN_TRY(advance());
      SEQRUN_TRY(expect_punct("("));
      if (tok_.kind != Tok::String) return error("expected a string in loc(...)");
      loc = tok_.text;
      SEQRUN_TRY(advance());
      SEQRUN_TRY(expect_punct(")"));
    }
    std::vector<Value*> all_inputs = inputs;
    all_inputs.insert(all_inputs.end(), captures.begin(), captures.end());
    Node* n = g.add_node(op, all_inputs, static_cast<int>(results.size()), std::move(attrs), results);
    n->set_num_captures(static_cast<int>(captures.size()));
    n->set_name(loc);
    for (size_t i = 0; i < results.size(); ++i) {
      if (n->output(static_cast<int>(i))->name() != results[i]) return error("internal: result name clash");
      g.set_value_type(n->output(static_cast<int>(i)), types[i]);
    }
    return Status::ok();
  }

  Lexer lex_;
  Token tok_;
};

}  // namespace

Result<std::unique_ptr<Graph>> parse_graph(std::string_view text) {
  Parser p(text);
  return p.parse_top();
}

}  // namespace seqrun
