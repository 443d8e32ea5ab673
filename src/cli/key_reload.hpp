// SIGHUP in the long-running commands (nomq sub, nomq pub, nomq bridge): reload the config file
// and move the node to the key epoch it now names (Node::rotate_keys; docs/security.md §4).
// One line on stderr either way; a file that cannot be used leaves the node on its keys.
#pragma once

#include <string>

#include "nomq/node.hpp"

namespace nomq::cli {

// Installs a SIGHUP handler (SA_RESTART: a blocking read of stdin is not cut short) that only
// sets a flag; take_sighup() returns and clears it.
void install_sighup_flag();
bool take_sighup();

// Reloads `path` and rotates `node` to its key epoch. Prints one line ("nomq sub: SIGHUP: ...")
// and returns whether the node now has the new epoch. Never throws for a bad file.
bool reload_keys(Node& node, const std::string& command, const std::string& path,
                 bool allow_insecure_permissions);

}  // namespace nomq::cli
