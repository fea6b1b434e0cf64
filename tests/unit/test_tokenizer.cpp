// Tokenizers against ids made outside seqrun: GPT-2 BPE (gpt-3-encoder's ids), SentencePiece
// (python3-sentencepiece's ids for a model trained by spm_train), the byte tokenizer, GPT-2's
// pre-tokenization on hand-worked cases, streaming decode, the model-metadata round trip, and errors.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ir/serialize.h"
#include "ir/text.h"
#include "runtime/tokenizer.h"
#include "runtime/tokenizer_internal.h"

using namespace seqrun;
using namespace seqrun::runtime;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

const std::string kGpt2Dir = std::string(SEQRUN_TEST_DATA) + "/gpt2-bpe";
const std::string kSpmDir = std::string(SEQRUN_TEST_DATA) + "/spm";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/seqrun_tokenizer_XXXXXX";
    const char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct RefCase {
  std::string text;
  std::vector<int32_t> ids;
  std::string decoded;  // sentencepiece: what python3-sentencepiece decoded the ids to
};

std::vector<RefCase> read_cases(const json& list) {
  std::vector<RefCase> cases;
  for (const json& c : list) {
    RefCase r;
    r.text = c["text"].get<std::string>();
    r.ids = c["ids"].get<std::vector<int32_t>>();
    r.decoded = c.contains("decoded") ? c["decoded"].get<std::string>() : r.text;
    cases.push_back(r);
  }
  return cases;
}

std::vector<RefCase> gpt2_cases() {
  return read_cases(json::parse(read_file(kGpt2Dir + "/reference-ids.json")));
}
json spm_reference() {
  return json::parse(read_file(kSpmDir + "/reference-ids.json"));
}

// A strict UTF-8 check written independently of the code under test (RFC 3629 table 3-7).
bool is_valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned c = static_cast<uint8_t>(s[i]);
    size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated
    const unsigned c1 = static_cast<uint8_t>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (size_t k = 2; k <= n; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

std::unique_ptr<Tokenizer> load_or_fail(const std::map<std::string, std::string>& metadata) {
  auto tok = tokenizer_from_metadata(metadata);
  INFO(tok.status().message());
  REQUIRE(tok.is_ok());
  return std::move(tok).value();
}

std::unique_ptr<Tokenizer> gpt2_tokenizer() {
  std::map<std::string, std::string> metadata;
  Status st =
      tokenizer_to_metadata("gpt2_bpe", {kGpt2Dir + "/encoder.json", kGpt2Dir + "/vocab.bpe"}, metadata);
  INFO(st.message());
  REQUIRE(st.is_ok());
  return load_or_fail(metadata);
}

// Decodes ids one at a time through a StreamDecoder: every chunk must be whole UTF-8 characters when the
// text is valid UTF-8, and the chunks must add up to `expected`.
void check_streaming(const Tokenizer& tok, const std::vector<int32_t>& ids, const std::string& expected) {
  StreamDecoder stream(tok);
  std::string joined;
  for (int32_t id : ids) {
    auto chunk = stream.push(id);
    REQUIRE(chunk.is_ok());
    if (is_valid_utf8(expected)) CHECK(is_valid_utf8(chunk.value()));
    joined += chunk.value();
  }
  joined += stream.flush();
  CHECK(joined == expected);
}

std::unique_ptr<Graph> tiny_graph() {
  auto g = parse_graph(R"(
graph main(%x: f32[4]) {
  %y = Exp(%x) : f32[4]
  return %y
}
)");
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

}  // namespace

// ---- GPT-2 byte-level BPE -------------------------------------------------------------------------

// SentencePiece is unavailable in sanitizer builds (runtime/tokenizer_spm.cpp opens it with dlopen and
// RTLD_DEEPBIND, which ASan does not support): the cases that need it skip there.
#ifdef SEQRUN_SANITIZER_BUILD
#define SKIP_WITHOUT_SENTENCEPIECE()                                   \
  do {                                                                 \
    WARN("skipped: SentencePiece is unavailable in sanitizer builds"); \
    return;                                                            \
  } while (0)
#else
#define SKIP_WITHOUT_SENTENCEPIECE() \
  do {                               \
  } while (0)
#endif

TEST_CASE("tokenizer: GPT-2 BPE reproduces gpt-3-encoder's ids and decodes back") {
  auto tok = gpt2_tokenizer();
  CHECK(tok->kind() == "gpt2_bpe");
  CHECK(tok->vocab_size() == 50257);
  CHECK(tok->bos_id() == std::optional<int32_t>(50256));  // <|endoftext|> in encoder.json
  CHECK(tok->eos_id() == std::optional<int32_t>(50256));
  const auto cases = gpt2_cases();
  REQUIRE(cases.size() == 6);
  for (const RefCase& c : cases) {
    INFO(c.text);
    auto ids = tok->encode(c.text);
    REQUIRE(ids.is_ok());
    CHECK(ids.value() == c.ids);
    auto text = tok->decode(c.ids);
    REQUIRE(text.is_ok());
    CHECK(text.value() == c.text);
    check_streaming(*tok, c.ids, c.text);
  }
}

TEST_CASE("tokenizer: GPT-2 BPE decode_token gives raw bytes; a split character streams whole") {
  auto tok = gpt2_tokenizer();
  // From the reference: " “" is tokens 564, 250 (bytes 0x20 0xE2 0x80, then 0x9C).
  CHECK(tok->decode_token(564).value() == " \xE2\x80");
  CHECK(tok->decode_token(250).value() == "\x9C");
  StreamDecoder stream(*tok);
  CHECK(stream.push(564).value() == " ");
  CHECK(stream.push(250).value() == "\xE2\x80\x9C");
  CHECK(stream.flush().empty());
  // Ids outside the vocabulary are errors naming the id.
  auto bad = tok->decode({15496, 50257});
  REQUIRE_FALSE(bad.is_ok());
  CHECK_THAT(bad.status().message(), Contains("token #1") && Contains("50257"));
  CHECK_FALSE(tok->decode_token(-1).is_ok());
  // The empty string and text that is not UTF-8 (bytes pass through the byte alphabet).
  CHECK(tok->encode("").value().empty());
  auto raw = tok->encode("a\xFF\xFE");
  REQUIRE(raw.is_ok());
  CHECK(tok->decode(raw.value()).value() == "a\xFF\xFE");
}

TEST_CASE("tokenizer: a Hugging Face tokenizer.json (both merge forms) gives the same ids") {
  const json encoder = json::parse(read_file(kGpt2Dir + "/encoder.json"));
  std::vector<std::string> merge_lines;
  {
    std::istringstream in(read_file(kGpt2Dir + "/vocab.bpe"));
    std::string line;
    std::getline(in, line);  // #version
    while (std::getline(in, line)) {
      if (!line.empty()) merge_lines.push_back(line);
    }
  }
  for (bool pair_form : {false, true}) {
    INFO("merges as " << (pair_form ? "pairs" : "strings"));
    json merges = json::array();
    for (const std::string& m : merge_lines) {
      const size_t space = m.find(' ');
      if (pair_form) {
        merges.push_back(json::array({m.substr(0, space), m.substr(space + 1)}));
      } else {
        merges.push_back(m);
      }
    }
    json root = {
        {"version", "1.0"},
        {"added_tokens", json::array({{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}})},
        {"normalizer", nullptr},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", encoder}, {"merges", merges}}}};
    TempDir dir;
    write_file(dir.file("tokenizer.json"), root.dump());
    std::map<std::string, std::string> metadata;
    Status st = tokenizer_to_metadata_from_path(dir.path(), metadata);
    INFO(st.message());
    REQUIRE(st.is_ok());
    CHECK(metadata.at("tokenizer.type") == "gpt2_bpe");
    auto tok = load_or_fail(metadata);
    CHECK(tok->eos_id() == std::optional<int32_t>(50256));
    for (const RefCase& c : gpt2_cases()) {
      INFO(c.text);
      CHECK(tok->encode(c.text).value() == c.ids);
      CHECK(tok->decode(c.ids).value() == c.text);
    }
  }
}

TEST_CASE("tokenizer: tokenizer.json extras: added tokens, tokenizer_config.json, refused features") {
  // A toy byte-level vocabulary: the 256 byte tokens (ids 0..255 in byte order), "ab" = 256, "abc" = 257.
  json vocab = json::object();
  const uint32_t printable_first[3] = {'!', 0xA1, 0xAE};
  const uint32_t printable_last[3] = {'~', 0xAC, 0xFF};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    bool printable = false;
    for (int r = 0; r < 3; ++r) printable = printable || (b >= printable_first[r] && b <= printable_last[r]);
    std::string spelling;
    tokenizer_detail::append_utf8(printable ? b : next++, spelling);
    vocab[spelling] = b;
  }
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  json base = {{"normalizer", nullptr},
               {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", true}}},
               {"added_tokens", json::array({{{"id", 258}, {"content", "<eos>"}, {"special", true}}})},
               {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b", "ab c"})}}}};
  TempDir dir;
  write_file(dir.file("tokenizer.json"), base.dump());
  write_file(dir.file("tokenizer_config.json"),
             R"({"bos_token": "<eos>", "eos_token": {"content": "<eos>"}})");
  std::map<std::string, std::string> metadata;
  Status st = tokenizer_to_metadata_from_path(dir.file("tokenizer.json"), metadata);
  INFO(st.message());
  REQUIRE(st.is_ok());
  auto tok = load_or_fail(metadata);
  CHECK(tok->vocab_size() == 259);
  CHECK(tok->bos_id() == std::optional<int32_t>(258));
  CHECK(tok->eos_id() == std::optional<int32_t>(258));
  // add_prefix_space: "abc" is encoded as " abc" -> byte ' ' (32), then "abc" (257).
  CHECK(tok->encode("abc").value() == std::vector<int32_t>{32, 257});
  CHECK(tok->encode("ab").value() == std::vector<int32_t>{32, 256});
  CHECK(tok->decode({257, 258}).value() == "abc<eos>");

  struct Refused {
    const char* field;
    json value;
    const char* expect;
  };
  const std::vector<Refused> refused = {
      {"normalizer", {{"type", "NFC"}}, "normalizer 'NFC' is not supported"},
      {"pre_tokenizer", {{"type", "Metaspace"}}, "pre_tokenizer 'Metaspace' is not supported"},
      {"model", {{"type", "WordPiece"}, {"vocab", vocab}}, "model.type 'WordPiece' is not supported"},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b"})}, {"byte_fallback", true}},
       "byte_fallback"},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a"})}}, "model.merges[0]"},
      {"model", {{"type", "BPE"}, {"vocab", 7}, {"merges", json::array()}}, "model.vocab"},
      {"model", {{"type", 3}}, "unexpected JSON structure"},
  };
  for (const Refused& r : refused) {
    json bad = base;
    bad[r.field] = r.value;
    write_file(dir.file("bad.json"), bad.dump());
    std::map<std::string, std::string> out;
    Status refused_st = tokenizer_to_metadata("hf_json", {dir.file("bad.json")}, out);
    INFO(r.expect);
    REQUIRE_FALSE(refused_st.is_ok());
    CHECK_THAT(refused_st.message(), Contains(r.expect) && Contains("bad.json"));
    CHECK(out.empty());
  }
}

// ---- GPT-2 pre-tokenization and Unicode classes (hand-worked from the pattern) ----------------------

TEST_CASE("tokenizer: GPT-2 pre-tokenization follows the regex alternatives") {
  using V = std::vector<std::string>;
  struct Case {
    std::string text;
    V pieces;
  };
  const std::vector<Case> cases = {
      {"Hello world", {"Hello", " world"}},
      {"a  b", {"a", " ", " b"}},            // \s+(?!\S) leaves the last space to lead " b"
      {"x \n\ny", {"x", " \n", "\n", "y"}},  // "\n" cannot lead "y": \s+ takes it alone
      {"ends  ", {"ends", "  "}},            // a trailing run is one piece
      {"it's we'll I'M", {"it", "'s", " we", "'ll", " I", "'", "M"}},  // contractions are lower-case only
      {"3.14 x2", {"3", ".", "14", " x", "2"}},
      {"!!!? (a)", {"!!!?", " (", "a", ")"}},
      {" \xE6\x97\xA5\xE6\x9C\xAC", {" \xE6\x97\xA5\xE6\x9C\xAC"}},  // " 日本": letters
      {"\xC2\xBD\xE2\x85\xAB", {"\xC2\xBD\xE2\x85\xAB"}},            // "½Ⅻ": numbers (No, Nl)
      {"a\xFF"
       "b",
       {"a", "\xFF", "b"}},                              // an invalid byte is "other"
      {"\t\xE3\x80\x80x", {"\t", "\xE3\x80\x80", "x"}},  // U+3000 is a space
      {"", {}},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    V got;
    for (std::string_view p : tokenizer_detail::gpt2_pretokenize(c.text)) got.emplace_back(p);
    CHECK(got == c.pieces);
  }
}

TEST_CASE("tokenizer: Unicode letter/number table") {
  using tokenizer_detail::classify_code_point;
  using tokenizer_detail::UnicodeClass;
  CHECK(classify_code_point('A') == UnicodeClass::letter);
  CHECK(classify_code_point('z') == UnicodeClass::letter);
  CHECK(classify_code_point('0') == UnicodeClass::number);
  CHECK(classify_code_point(' ') == UnicodeClass::other);
  CHECK(classify_code_point('_') == UnicodeClass::other);
  CHECK(classify_code_point(0xE9) == UnicodeClass::letter);     // é
  CHECK(classify_code_point(0xAA) == UnicodeClass::letter);     // ª (Lo)
  CHECK(classify_code_point(0x02B0) == UnicodeClass::letter);   // ʰ (Lm)
  CHECK(classify_code_point(0x65E5) == UnicodeClass::letter);   // 日
  CHECK(classify_code_point(0x0663) == UnicodeClass::number);   // Arabic-Indic three (Nd)
  CHECK(classify_code_point(0x216B) == UnicodeClass::number);   // Ⅻ (Nl)
  CHECK(classify_code_point(0xBD) == UnicodeClass::number);     // ½ (No)
  CHECK(classify_code_point(0x2014) == UnicodeClass::other);    // — (Pd)
  CHECK(classify_code_point(0x1F642) == UnicodeClass::other);   // 🙂 (So)
  CHECK(classify_code_point(0x20000) == UnicodeClass::letter);  // CJK extension B
  CHECK(classify_code_point(0x10FFFF) == UnicodeClass::other);
  CHECK(classify_code_point(tokenizer_detail::kInvalidCodePoint) == UnicodeClass::other);
}

// ---- byte-level -----------------------------------------------------------------------------------

TEST_CASE("tokenizer: byte-level ids are the bytes; invalid UTF-8 passes through") {
  auto tok = load_or_fail({{"tokenizer.type", "bytes"}});
  CHECK(tok->kind() == "bytes");
  CHECK(tok->vocab_size() == 256);
  CHECK_FALSE(tok->bos_id().has_value());
  CHECK(tok->encode("\"in").value() == std::vector<int32_t>{34, 105, 110});  // the RWKV tiny test prompt
  CHECK(tok->encode("h\xC3\xA9").value() == std::vector<int32_t>{104, 0xC3, 0xA9});
  CHECK(tok->decode({0xFF, 0x41, 0xC3}).value() ==
        "\xFF"
        "A\xC3");
  auto bad = tok->decode({65, 256});
  REQUIRE_FALSE(bad.is_ok());
  CHECK_THAT(bad.status().message(), Contains("token #1") && Contains("256"));
  CHECK_FALSE(tok->decode_token(-3).is_ok());

  StreamDecoder stream(*tok);
  CHECK(stream.push(0xC3).value().empty());  // first byte of "é": held back
  CHECK(stream.push(0xA9).value() == "\xC3\xA9");
  CHECK(stream.push(0xFF).value() == "\xFF");  // can never be valid: passed through at once
  CHECK(stream.push(0xE6).value().empty());    // 日 = E6 97 A5 ...
  CHECK(stream.push(0x97).value().empty());
  CHECK(stream.push('x').value() == "\xE6\x97x");  // ...interrupted: the bytes pass through
  CHECK(stream.push(0xF0).value().empty());
  CHECK(stream.flush() == "\xF0");  // the stream ended inside a character
  CHECK(stream.flush().empty());
}

// ---- SentencePiece --------------------------------------------------------------------------------

TEST_CASE("tokenizer: SentencePiece matches python3-sentencepiece's ids and decoding") {
  SKIP_WITHOUT_SENTENCEPIECE();
  const json ref = spm_reference();
  std::map<std::string, std::string> metadata;
  Status st = tokenizer_to_metadata_from_path(kSpmDir + "/tiny.model", metadata);
  INFO(st.message());
  REQUIRE(st.is_ok());
  CHECK(metadata.at("tokenizer.type") == "sentencepiece");
  auto tok = load_or_fail(metadata);
  CHECK(tok->kind() == "sentencepiece");
  CHECK(tok->vocab_size() == ref["vocab_size"].get<int32_t>());
  CHECK(tok->bos_id() == std::optional<int32_t>(ref["bos_id"].get<int32_t>()));
  CHECK(tok->eos_id() == std::optional<int32_t>(ref["eos_id"].get<int32_t>()));
  const auto cases = read_cases(ref["cases"]);
  REQUIRE(cases.size() == 8);
  for (const RefCase& c : cases) {
    INFO(c.text);
    auto ids = tok->encode(c.text);
    REQUIRE(ids.is_ok());
    CHECK(ids.value() == c.ids);
    auto text = tok->decode(c.ids);
    REQUIRE(text.is_ok());
    CHECK(text.value() == c.decoded);
    check_streaming(*tok, c.ids, c.decoded);
  }
  // Control tokens decode to nothing, out-of-range ids are errors (libsentencepiece would read past its
  // table).
  const int32_t bos = ref["bos_id"].get<int32_t>();
  std::vector<int32_t> with_bos = cases[0].ids;
  with_bos.insert(with_bos.begin(), bos);
  CHECK(tok->decode(with_bos).value() == cases[0].decoded);
  check_streaming(*tok, with_bos, cases[0].decoded);
  auto bad = tok->decode({5, 1000});
  REQUIRE_FALSE(bad.is_ok());
  CHECK_THAT(bad.status().message(), Contains("token #1") && Contains("1000"));
  CHECK_FALSE(tok->decode_token(-1).is_ok());
}

// ---- metadata round trip through a model file ------------------------------------------------------

TEST_CASE("tokenizer: metadata survives save_model / load_model for every kind") {
  SKIP_WITHOUT_SENTENCEPIECE();
  struct Kind {
    std::string source;  // --tokenizer PATH
    std::string text;
  };
  const std::vector<Kind> kinds = {
      {"bytes", "caf\xC3\xA9 \xF0\x9F\x99\x82"},
      {kGpt2Dir, "naïve café — “quotes” 日本語 🙂"},
      {kSpmDir + "/tiny.model", "The quick brown fox"},
  };
  TempDir dir;
  for (const Kind& k : kinds) {
    INFO(k.source);
    SaveOptions save;
    save.metadata["source_format"] = "test";
    save.metadata["tokenizer.stale_key"] = "replaced";
    Status st = tokenizer_to_metadata_from_path(k.source, save.metadata);
    INFO(st.message());
    REQUIRE(st.is_ok());
    CHECK(save.metadata.count("tokenizer.stale_key") == 0);
    CHECK(save.metadata.at("source_format") == "test");
    auto before = load_or_fail(save.metadata);
    const std::string path = dir.file("model.seqrun");
    REQUIRE(save_model(*tiny_graph(), path, save).is_ok());
    auto loaded = load_model(path);
    INFO(loaded.status().message());
    REQUIRE(loaded.is_ok());
    auto after = load_or_fail(loaded.value().metadata);
    CHECK(after->kind() == before->kind());
    CHECK(after->vocab_size() == before->vocab_size());
    CHECK(after->encode(k.text).value() == before->encode(k.text).value());
    CHECK(after->decode(before->encode(k.text).value()).value() ==
          before->decode(before->encode(k.text).value()).value());
  }
  // The GPT-2 ids after the round trip are still the reference ids.
  SaveOptions save;
  REQUIRE(tokenizer_to_metadata_from_path(kGpt2Dir + "/encoder.json", save.metadata).is_ok());
  const std::string path = dir.file("gpt2.seqrun");
  REQUIRE(save_model(*tiny_graph(), path, save).is_ok());
  auto loaded = load_model(path);
  REQUIRE(loaded.is_ok());
  auto tok = load_or_fail(loaded.value().metadata);
  for (const RefCase& c : gpt2_cases()) CHECK(tok->encode(c.text).value() == c.ids);
}

// ---- errors ---------------------------------------------------------------------------------------

TEST_CASE("tokenizer: bad metadata is a clear error naming the key") {
  SKIP_WITHOUT_SENTENCEPIECE();
  const std::string merges = read_file(kGpt2Dir + "/vocab.bpe");
  const std::string vocab = read_file(kGpt2Dir + "/encoder.json");
  using M = std::map<std::string, std::string>;
  struct Case {
    const char* name;
    M metadata;
    std::vector<const char*> expect;
  };
  const std::vector<Case> cases = {
      {"no tokenizer", {{"source_format", "onnx"}}, {"has no tokenizer", "--tokenizer"}},
      {"unknown type", {{"tokenizer.type", "wordpiece"}}, {"unknown tokenizer type 'wordpiece'"}},
      {"missing vocab",
       {{"tokenizer.type", "gpt2_bpe"}, {"tokenizer.merges", merges}},
       {"tokenizer.vocab_json", "missing"}},
      {"corrupt vocab",
       {{"tokenizer.type", "gpt2_bpe"}, {"tokenizer.vocab_json", "{\"a\": 1,"}, {"tokenizer.merges", ""}},
       {"tokenizer.vocab_json", "not valid JSON"}},
      {"vocab not an object",
       {{"tokenizer.type", "gpt2_bpe"}, {"tokenizer.vocab_json", "[1, 2]"}},
       {"tokenizer.vocab_json", "object"}},
      {"vocab id not an integer",
       {{"tokenizer.type", "gpt2_bpe"}, {"tokenizer.vocab_json", "{\"a\": \"1\"}"}},
       {"tokenizer.vocab_json", "'a'", "non-integer"}},
      {"vocab id out of range",
       {{"tokenizer.type", "gpt2_bpe"}, {"tokenizer.vocab_json", "{\"a\": 99999999}"}},
       {"tokenizer.vocab_json", "99999999"}},
      {"vocab lacks bytes",
       {{"tokenizer.type", "gpt2_bpe"}, {"tokenizer.vocab_json", "{\"a\": 0}"}, {"tokenizer.merges", ""}},
       {"tokenizer.vocab_json", "no token for byte 0x00"}},
      {"token outside the byte alphabet",
       {{"tokenizer.type", "gpt2_bpe"}, {"tokenizer.vocab_json", "{\"a b\": 0}"}},
       {"tokenizer.vocab_json", "outside GPT-2's byte alphabet"}},
      {"missing merges",
       {{"tokenizer.type", "gpt2_bpe"}, {"tokenizer.vocab_json", vocab}},
       {"tokenizer.merges", "missing"}},
      {"merge of unknown tokens",
       {{"tokenizer.type", "gpt2_bpe"},
        {"tokenizer.vocab_json", vocab},
        {"tokenizer.merges", "#version: 0.2\nĠ t\nqqqq zzzz\n"}},
       {"tokenizer.merges", "line 3", "'qqqq'", "not in the vocabulary"}},
      {"malformed merge line",
       {{"tokenizer.type", "gpt2_bpe"}, {"tokenizer.vocab_json", vocab}, {"tokenizer.merges", "Ġ t\nĠt\n"}},
       {"tokenizer.merges", "line 2", "two tokens"}},
      {"bad base64",
       {{"tokenizer.type", "sentencepiece"}, {"tokenizer.model_base64", "QUJD$A=="}},
       {"tokenizer.model_base64", "bad base64", "offset 4"}},
      {"not a sentencepiece model",
       {{"tokenizer.type", "sentencepiece"}, {"tokenizer.model_base64", base64_encode("garbage bytes")}},
       {"tokenizer.model_base64", "not a SentencePiece model"}},
      {"missing sentencepiece model",
       {{"tokenizer.type", "sentencepiece"}},
       {"tokenizer.model_base64", "missing"}},
      {"bos id out of range",
       {{"tokenizer.type", "bytes"}, {"tokenizer.bos_id", "256"}},
       {"tokenizer.bos_id", "'256'"}},
      {"eos id not a number",
       {{"tokenizer.type", "bytes"}, {"tokenizer.eos_id", "-1"}},
       {"tokenizer.eos_id", "'-1'"}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto tok = tokenizer_from_metadata(c.metadata);
    REQUIRE_FALSE(tok.is_ok());
    for (const char* e : c.expect) CHECK_THAT(tok.status().message(), Contains(e));
  }
  CHECK_FALSE(has_tokenizer({{"source_format", "onnx"}}));
  CHECK(has_tokenizer({{"tokenizer.type", "bytes"}}));
}

TEST_CASE("tokenizer: bad tokenizer files are errors naming the file; metadata is left alone") {
  SKIP_WITHOUT_SENTENCEPIECE();
  TempDir dir;
  const std::map<std::string, std::string> original = {{"source_format", "onnx"},
                                                       {"tokenizer.type", "bytes"}};
  auto expect_error = [&](const Status& st, std::vector<std::string> parts,
                          const std::map<std::string, std::string>& m) {
    INFO(st.message());
    REQUIRE_FALSE(st.is_ok());
    for (const std::string& p : parts) CHECK_THAT(st.message(), Contains(p));
    CHECK(m == original);
  };
  auto m = original;
  expect_error(tokenizer_to_metadata("wordpiece", {}, m), {"unknown tokenizer kind 'wordpiece'"}, m);
  expect_error(tokenizer_to_metadata("gpt2_bpe", {dir.file("x.json")}, m), {"takes 2 file(s)"}, m);
  expect_error(tokenizer_to_metadata("gpt2_bpe", {dir.file("nope.json"), kGpt2Dir + "/vocab.bpe"}, m),
               {"nope.json", "cannot open"}, m);
  write_file(dir.file("encoder.json"), "{\"a\": 0, \"b\": 1");
  write_file(dir.file("vocab.bpe"), "#version: 0.2\n");
  expect_error(tokenizer_to_metadata_from_path(dir.path(), m), {"encoder.json", "not valid JSON"}, m);
  write_file(dir.file("encoder.json"), read_file(kGpt2Dir + "/encoder.json"));
  write_file(dir.file("vocab.bpe"), "#version: 0.2\nĠ t\nĠt he_unknown\n");
  expect_error(tokenizer_to_metadata_from_path(dir.file("encoder.json"), m),
               {"encoder.json", "tokenizer.merges", "line 3", "'he_unknown'"}, m);
  write_file(dir.file("broken.model"), "not a model at all");
  expect_error(tokenizer_to_metadata_from_path(dir.file("broken.model"), m),
               {"broken.model", "not a SentencePiece model"}, m);
  expect_error(tokenizer_to_metadata_from_path(dir.file("missing"), m), {"missing", "no such tokenizer"}, m);
  write_file(dir.file("notes.txt"), "hello");
  expect_error(tokenizer_to_metadata_from_path(dir.file("notes.txt"), m), {"notes.txt", "not a tokenizer"},
               m);
  TempDir empty;
  expect_error(tokenizer_to_metadata_from_path(empty.path(), m), {"no tokenizer.json"}, m);
}

TEST_CASE("tokenizer: base64 matches RFC 4648's test vectors and rejects bad input") {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"},
                                                                    {std::string("\x00\xFF\xFE", 3), "AP/+"}};
  for (const auto& [plain, encoded] : vectors) {
    CHECK(base64_encode(plain) == encoded);
    auto decoded = base64_decode(encoded);
    REQUIRE(decoded.is_ok());
    CHECK(decoded.value() == plain);
  }
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zm9v\n", "Zg==Zg==", "Zm=v", "Zm9*"}) {
    INFO(bad);
    auto r = base64_decode(bad);
    REQUIRE_FALSE(r.is_ok());
    CHECK_THAT(r.status().message(), Contains("bad base64"));
  }
}
