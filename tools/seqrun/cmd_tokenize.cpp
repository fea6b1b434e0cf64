// `seqrun tokenize`: encode text or decode ids with the tokenizer stored in a .seqrun file's metadata.
#include <climits>
#include <cstdio>

#include <fmt/format.h>

#include "ir/serialize.h"
#include "runtime/tokenizer.h"
#include "tools/seqrun/cli.h"

namespace seqrun::cli {

namespace {

// "1, 2,3" -> {1, 2, 3} (an empty list is allowed); an element that is not a non-negative decimal int32
// is an error naming it.
Result<std::vector<int32_t>> parse_ids(const std::string& list) {
  std::vector<int32_t> ids;
  if (list.find_first_not_of(" \t") == std::string::npos) return ids;
  for (size_t start = 0;;) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    bool ok = !item.empty() && item.size() <= 10;
    int64_t value = 0;
    for (size_t k = 0; ok && k < item.size(); ++k) {
      ok = item[k] >= '0' && item[k] <= '9';
      value = value * 10 + (item[k] - '0');
    }
    if (!ok || value > INT32_MAX)
      return make_error("--ids: '{}' is not a token id (e.g. --ids 15496,995)", item);
    ids.push_back(static_cast<int32_t>(value));
    if (end == list.size()) break;
    start = end + 1;
  }
  return ids;
}

// A token's bytes for display: printable ASCII as is, the rest as \n, \t or \xNN, in double quotes.
std::string display_bytes(const std::string& bytes) {
  std::string out = "\"";
  for (char c : bytes) {
    const uint8_t b = static_cast<uint8_t>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (b < 0x20 || b >= 0x7F) {
      out += fmt::format("\\x{:02X}", b);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

CLI::App* add_tokenize_command(CLI::App& app, TokenizeArgs& args) {
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Encode text to token ids, or decode ids, with the model's own tokenizer");
  cmd->add_option("MODEL", args.model, "A .seqrun file exported with --tokenizer")->required();
  args.text_option = cmd->add_option("--text", args.text, "Text to encode: prints its ids, comma-separated");
  args.ids_option = cmd->add_option("--ids", args.ids, "Comma-separated ids to decode: prints the text")
                        ->type_name("1,2,3");
  args.text_option->excludes(args.ids_option);
  cmd->add_flag("--pieces", args.pieces, "Also print one line per token: its id and its bytes");
  cmd->footer(
      "Exactly one of --text and --ids. The tokenizer (bytes, GPT-2 BPE or SentencePiece) is the one stored\n"
      "in the model's metadata by 'seqrun-export ... --tokenizer PATH'. Text is taken literally: special\n"
      "tokens such as <|endoftext|> are not recognized in it.\n"
      "\n"
      "Examples:\n"
      "  seqrun tokenize gpt2.seqrun --text 'Hello world'      15496,995\n"
      "  seqrun tokenize gpt2.seqrun --ids 15496,995            Hello world\n"
      "  seqrun tokenize llama.seqrun --text 'café' --pieces");
  return cmd;
}

int run_tokenize(const TokenizeArgs& args, const GlobalArgs& /*global*/) {
  const bool have_text = args.text_option != nullptr && args.text_option->count() > 0;
  const bool have_ids = args.ids_option != nullptr && args.ids_option->count() > 0;
  if (have_text == have_ids) {
    return report_error("tokenize: give exactly one of --text and --ids (see 'seqrun tokenize --help')",
                        kExitUsage);
  }
  std::vector<int32_t> ids;
  if (have_ids) {
    Result<std::vector<int32_t>> parsed = parse_ids(args.ids);
    if (!parsed) return report_error(parsed.status().message(), kExitUsage);
    ids = std::move(parsed).value();
  }
  Result<ModelFile> model = load_model(args.model);
  if (!model) return report_error(model.status().message());
  Result<std::unique_ptr<runtime::Tokenizer>> tokenizer =
      runtime::tokenizer_from_metadata(model.value().metadata);
  if (!tokenizer) return report_error(tokenizer.status().with_context(args.model).message());
  const runtime::Tokenizer& tok = *tokenizer.value();

  if (have_text) {
    Result<std::vector<int32_t>> encoded = tok.encode(args.text);
    if (!encoded) return report_error(encoded.status().with_context(args.model).message());
    ids = std::move(encoded).value();
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
    std::printf("%s\n", line.c_str());
  } else {
    Result<std::string> decoded = tok.decode(ids);
    if (!decoded) return report_error(decoded.status().with_context(args.model).message());
    std::fwrite(decoded.value().data(), 1, decoded.value().size(), stdout);
    std::printf("\n");
  }
  if (args.pieces) {
    for (int32_t id : ids) {
      Result<std::string> piece = tok.decode_token(id);
      if (!piece) return report_error(piece.status().with_context(args.model).message());
      std::printf("%d\t%s\n", id, display_bytes(piece.value()).c_str());
    }
  }
  return 0;
}

}  // namespace seqrun::cli
