#pragma once
// Human-readable views of the field table: `lumina config explain` and the
// generated reference docs/config.md.
#include <string>
#include <string_view>

namespace lumina {

// `query`: "" (every field, grouped by section), a section ("model"), a
// field ("model.hidden_size") or a field name unique across sections
// ("hidden_size"). Throws with a suggestion when nothing matches.
std::string explain_config(std::string_view query);

// The markdown reference written to docs/config.md.
std::string config_reference_markdown();

}  // namespace lumina
