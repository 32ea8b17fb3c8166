# pack.awk: a Python part as the status script carries it: no comments, docstrings or blank
# lines, one space per indentation level, and of the rules (NAME = value lines) only those
# the code names. Two passes over the same file: the first collects the names used.
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
        if (!rule) {
            rest = line
            while (match(rest, /[A-Z][A-Z0-9_]+/)) { used[substr(rest, RSTART, RLENGTH)] = 1; rest = substr(rest, RSTART + RLENGTH) }
        }
        next
    }
    if (rule) { name = line; sub(/ .*/, "", name); if (!(name in used)) next }
    match(line, /^ */)
    printf "%*s%s\n", int(RLENGTH / 4), "", substr(line, RLENGTH + 1)
}
