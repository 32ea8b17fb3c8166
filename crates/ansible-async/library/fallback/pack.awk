# pack.awk: a Python part as the library carries it (deflated: every launch ships it): no
# comments, docstrings or blank lines, one space per indentation level, no space beside an
# operator or bracket outside strings, and of the rules (NAME = value lines) only those the
# code names, each renamed _1, _2, ... (the rules' names are long, and most are named once).
# Two passes over the same file: the first collects the names used and numbers the rules.
# Strings are copied as they are: a name inside one is text, never renamed.
BEGIN { OPS = ",=()[]{}:+-*/%<>|&" }
FNR == 1 { pass++ }
{
    line = $0
    if (line ~ /^[ ]*#/ || line ~ /^[ ]*$/) next
    if (line ~ /^[ ]*"""/) {
        if (!(line ~ /^[ ]*""".*"""[ ]*$/) || line ~ /^[ ]*"""[ ]*$/) doc = !doc
        next
    }
    if (doc) { if (line ~ /"""[ ]*$/) doc = 0; next }
    rule = line ~ /^[A-Z][A-Z0-9_]* = /
    if (pass == 1) {
        if (rule) { name = line; sub(/ .*/, "", name); rules[++nrules] = name }
        else if (line ~ /(^|[^A-Za-z0-9_])_[0-9]+([^A-Za-z0-9_]|$)/) {
            print "pack.awk: " FILENAME ":" FNR ": a name like _1 is the packer's: " line > "/dev/stderr"
            exit 1
        } else {
            rest = line
            while (match(rest, /[A-Z][A-Z0-9_]+/)) { used[substr(rest, RSTART, RLENGTH)] = 1; rest = substr(rest, RSTART + RLENGTH) }
        }
        next
    }
    if (pass == 2 && !numbered) {
        for (k = 1; k <= nrules; k++) if (rules[k] in used) short[rules[k]] = "_" (++count)
        numbered = 1
    }
    if (rule) { name = line; sub(/ .*/, "", name); if (!(name in used)) next }
    match(line, /^ */)
    printf "%*s%s\n", int(RLENGTH / 4), "", squeeze(substr(line, RLENGTH + 1))
}

# squeeze(CODE): one line of code without its trailing comment, the spaces next to OPS and
# the rules' long names; what is inside quotes stays as it is.
function squeeze(code,    out, n, i, c, quote, name) {
    out = ""
    n = length(code)
    for (i = 1; i <= n; i++) {
        c = substr(code, i, 1)
        if (quote != "") {
            out = out c
            if (c == "\\") out = out substr(code, ++i, 1)
            else if (c == quote) quote = ""
        } else if (c == "\"" || c == "'") {
            quote = c
            out = out c
        } else if (c == "#") {
            break
        } else if (c == " ") {
            if (!index(OPS, substr(out, length(out), 1)) && !index(OPS, substr(code, i + 1, 1))) out = out c
        } else if (c ~ /[A-Za-z_]/) {
            match(substr(code, i), /^[A-Za-z_][A-Za-z0-9_]*/)
            name = substr(code, i, RLENGTH)
            i += RLENGTH - 1
            # An attribute (os.O_CLOEXEC) is not a rule.
            out = out ((name in short) && substr(out, length(out), 1) != "." ? short[name] : name)
        } else {
            out = out c
        }
    }
    sub(/ +$/, "", out)
    return out
}
