#!/bin/sh
# Doxygen input filter for include/vsm/*.h: the headers are written in the
# kernel/gtk-doc style ("@name: text" for a parameter, "@name" for a
# mention) and name libvirt XML elements ("<disk>") in prose; Doxygen
# reads them as \param, \p and literal text.
exec sed -E \
	-e '/(\/\*\*|^[[:space:]]*\*)/s/</\\</g' -e 's/\/\*\*\\</\/**</g' \
	-e 's/^( \*) @([a-z_]+):/\1 \\param \2/' \
	-e 's/@([a-z_]+)/\\p \1/g' "$1"
