// The SentencePiece tokenizer (Llama and friends): the .model bytes from tokenizer.model_base64, run by
// Debian's libsentencepiece, so encode/decode are exactly SentencePiece's own.
//
// libsentencepiece carries its own copy of protobuf-lite and exports those symbols. Linked into a program
// that also loads libprotobuf (the ONNX importer), the two copies bind to each other and the program
// crashes before main. So the library is not linked: it is opened on first use with dlopen(RTLD_LOCAL |
// RTLD_DEEPBIND), which keeps its symbols out of the global scope and binds its own references to itself.
// Only virtual members of SentencePieceProcessor are called (through the vtable); the constructor, the
// destructor and util::Status's destructor and message come from dlsym. (Sanitizer runtimes refuse
// RTLD_DEEPBIND: sanitized builds open it with RTLD_LOCAL only, which works in programs without libprotobuf
// and is refused with an error in programs with it.)
//
// libsentencepiece does not check ids before indexing its piece table, so every id is range-checked here
// first. decode_token() returns a piece's surface in the middle of a text: "▁" becomes a space, a byte
// piece <0xAB> its byte, control tokens nothing, the unknown token SentencePiece's unknown surface.
#if defined(__GNUC__) && !defined(__clang__)
// A call devirtualized to a direct SentencePieceProcessor::X would need the unlinked library's symbol.
#pragma GCC optimize("no-devirtualize", "no-devirtualize-speculatively")
#endif

#include <dlfcn.h>

#include <mutex>
#include <new>

#include <fmt/format.h>
#include <sentencepiece_processor.h>

#include "runtime/tokenizer_internal.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SEQRUN_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define SEQRUN_SANITIZED 1
#endif
#endif

namespace seqrun::runtime::tokenizer_detail {

namespace {

using sentencepiece::SentencePieceProcessor;
using SpmStatus = sentencepiece::util::Status;

// The few non-virtual entry points, looked up once in the privately opened library.
struct SpmLibrary {
  void (*construct)(SentencePieceProcessor*) = nullptr;
  void (*destroy)(SentencePieceProcessor*) = nullptr;
  void (*destroy_status)(SpmStatus*) = nullptr;
  const char* (*status_message)(const SpmStatus*) = nullptr;
  std::string error;  // why it could not be opened; empty when usable
};

const SpmLibrary& spm_library() {
  static SpmLibrary lib;
  static std::once_flag once;
  std::call_once(once, [] {
    int flags = RTLD_NOW | RTLD_LOCAL;
#ifndef SEQRUN_SANITIZED
    flags |= RTLD_DEEPBIND;
#else
    // Without RTLD_DEEPBIND the library's protobuf 3.14 code would bind to a loaded libprotobuf and abort.
    if (dlsym(RTLD_DEFAULT, "_ZN6google8protobuf8internal13VerifyVersionEiiPKc") != nullptr) {
      lib.error = "SentencePiece is unavailable in a sanitizer build of a program that loads libprotobuf";
      return;
    }
#endif
    void* handle = dlopen("libsentencepiece.so.0", flags);
    if (handle == nullptr) {
      const char* why = dlerror();
      lib.error = fmt::format("cannot load libsentencepiece.so.0 (install Debian's libsentencepiece0): {}",
                              why != nullptr ? why : "unknown error");
      return;
    }
    lib.construct = reinterpret_cast<void (*)(SentencePieceProcessor*)>(
        dlsym(handle, "_ZN13sentencepiece22SentencePieceProcessorC1Ev"));
    lib.destroy = reinterpret_cast<void (*)(SentencePieceProcessor*)>(
        dlsym(handle, "_ZN13sentencepiece22SentencePieceProcessorD1Ev"));
    lib.destroy_status =
        reinterpret_cast<void (*)(SpmStatus*)>(dlsym(handle, "_ZN13sentencepiece4util6StatusD1Ev"));
    lib.status_message = reinterpret_cast<const char* (*)(const SpmStatus*)>(
        dlsym(handle, "_ZNK13sentencepiece4util6Status13error_messageEv"));
    if (lib.construct == nullptr || lib.destroy == nullptr || lib.destroy_status == nullptr ||
        lib.status_message == nullptr) {
      lib.error = "libsentencepiece.so.0 lacks the SentencePieceProcessor entry points seqrun uses";
    }
  });
  return lib;
}

// Runs a libsentencepiece call that returns util::Status; "" when it succeeded, else its message. The
// status is built in place (C++17 guaranteed elision: no copy constructor) and destroyed by the library.
template <typename Call>
std::string spm_error(Call&& call) {
  const SpmLibrary& lib = spm_library();
  alignas(SpmStatus) unsigned char storage[sizeof(SpmStatus)];
  SpmStatus* status = new (storage) SpmStatus(call());
  std::string message;
  if (!status->ok()) {
    const char* text = lib.status_message(status);
    message = text != nullptr && text[0] != '\0' ? text : "failed";
  }
  lib.destroy_status(status);
  return message;
}

const char kSpaceSymbol[] = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space

std::string replace_space_symbol(const std::string& piece) {
  std::string out;
  for (size_t pos = 0; pos < piece.size();) {
    if (piece.compare(pos, 3, kSpaceSymbol) == 0) {
      out += ' ';
      pos += 3;
    } else {
      out += piece[pos++];
    }
  }
  return out;
}

// "<0xAB>" -> 0xAB.
bool parse_byte_piece(const std::string& piece, uint8_t& byte) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return false;
  int value = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = piece[k];
    const int digit = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                             : -1;
    if (digit < 0) return false;
    value = value * 16 + digit;
  }
  byte = static_cast<uint8_t>(value);
  return true;
}

// Owns one SentencePieceProcessor, constructed and destroyed by the library (see the top of the file).
class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer() = default;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;
  ~SentencePieceTokenizer() override {
    if (processor_ != nullptr) spm_library().destroy(processor_);
  }

  std::string kind() const override { return "sentencepiece"; }

  Status load(const std::string& model_bytes) {
    const SpmLibrary& lib = spm_library();
    if (!lib.error.empty()) return Status::error(lib.error);
    processor_ = reinterpret_cast<SentencePieceProcessor*>(storage_);
    lib.construct(processor_);
    const SentencePieceProcessor& sp = *processor_;
    const std::string error = spm_error([&] { return processor_->LoadFromSerializedProto(model_bytes); });
    if (!error.empty()) return make_error("not a SentencePiece model: {}", error);
    piece_count_ = sp.GetPieceSize();
    if (piece_count_ <= 0) return make_error("the SentencePiece model has no pieces");
    if (valid(sp.unk_id())) {
      std::string surface;
      if (spm_error([&] { return sp.Decode(std::vector<int>{sp.unk_id()}, &surface); }).empty()) {
        unk_surface_ = surface;
      }
    }
    // Whether decoding drops the space of a first piece "▁xyz" (add_dummy_prefix): try one such piece.
    for (int id = 0; id < piece_count_; ++id) {
      const std::string& piece = sp.IdToPiece(id);
      if (sp.IsControl(id) || sp.IsUnknown(id) || sp.IsByte(id) || piece.size() <= 3 ||
          piece.compare(0, 3, kSpaceSymbol) != 0) {
        continue;
      }
      std::string alone;
      if (spm_error([&] { return sp.Decode(std::vector<int>{id}, &alone); }).empty()) {
        drops_leading_space_ = alone.empty() || alone[0] != ' ';
      }
      break;
    }
    return Status::ok();
  }

  std::optional<int32_t> model_bos() const {
    return valid(processor_->bos_id()) ? std::optional<int32_t>(processor_->bos_id()) : std::nullopt;
  }
  std::optional<int32_t> model_eos() const {
    return valid(processor_->eos_id()) ? std::optional<int32_t>(processor_->eos_id()) : std::nullopt;
  }

  Result<std::vector<int32_t>> encode(std::string_view text) const override {
    std::vector<int> ids;
    const std::string error =
        spm_error([&] { return processor_->Encode(absl::string_view(text.data(), text.size()), &ids); });
    if (!error.empty()) return make_error("SentencePiece encode failed: {}", error);
    return std::vector<int32_t>(ids.begin(), ids.end());
  }

  Result<std::string> decode(const std::vector<int32_t>& ids) const override {
    for (size_t i = 0; i < ids.size(); ++i) {
      Status st = check_id(ids[i]);
      if (!st) return st.with_context(fmt::format("token #{}", i));
    }
    std::string text;
    const std::vector<int> int_ids(ids.begin(), ids.end());
    const std::string error = spm_error([&] { return processor_->Decode(int_ids, &text); });
    if (!error.empty()) return make_error("SentencePiece decode failed: {}", error);
    return text;
  }

  Result<std::string> decode_token(int32_t id) const override {
    SEQRUN_TRY(check_id(id));
    if (processor_->IsControl(id)) return std::string();
    if (processor_->IsUnknown(id)) return unk_surface_;
    const std::string& piece = processor_->IdToPiece(id);
    uint8_t byte = 0;
    if (processor_->IsByte(id) && parse_byte_piece(piece, byte))
      return std::string(1, static_cast<char>(byte));
    return replace_space_symbol(piece);
  }

  int32_t vocab_size() const override { return piece_count_; }
  bool decode_drops_leading_space() const override { return drops_leading_space_; }

 private:
  alignas(SentencePieceProcessor) unsigned char storage_[sizeof(SentencePieceProcessor)];
  SentencePieceProcessor* processor_ = nullptr;  // in storage_ once constructed
  int32_t piece_count_ = 0;
  std::string unk_surface_ = " \xE2\x81\x87 ";  // SentencePiece's default: " ⁇ "
  bool drops_leading_space_ = false;

  bool valid(int id) const { return id >= 0 && id < piece_count_; }
  Status check_id(int32_t id) const {
    if (!valid(id)) return make_error("id {} is out of range [0, {})", id, piece_count_);
    return Status::ok();
  }
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> load_sentencepiece(const Metadata& metadata) {
  const std::string key = "tokenizer.model_base64";
  auto it = metadata.find(key);
  if (it == metadata.end()) return make_error("{}: missing (a sentencepiece tokenizer needs its model)", key);
  Result<std::string> bytes = base64_decode(it->second);
  if (!bytes) return bytes.status().with_context(key);
  auto tokenizer = std::make_unique<SentencePieceTokenizer>();
  Status st = tokenizer->load(bytes.value());
  if (!st) return st.with_context(key);
  tokenizer->set_special_ids(tokenizer->model_bos(), tokenizer->model_eos());
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

Status sentencepiece_file_to_metadata(const std::string& model_path, Metadata& metadata) {
  SEQRUN_ASSIGN(std::string bytes, read_text_file(model_path));
  SentencePieceTokenizer check;
  Status st = check.load(bytes);
  if (!st) return st.with_context(model_path);
  metadata["tokenizer.model_base64"] = base64_encode(bytes);
  return Status::ok();
}

}  // namespace seqrun::runtime::tokenizer_detail
