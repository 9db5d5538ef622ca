#!/usr/bin/env python3
"""image_libs.py ROOT: every dynamically linked ELF file under ROOT (an
image's unpacked or mounted filesystem) has each library it needs inside
ROOT.  Each file is listed by ROOT's own dynamic loader, chrooted into ROOT
(`chroot ROOT LDSO --list FILE`, which is what ldd does), so neither the
host's libraries nor its ld.so.cache can stand in for a missing one.

Prints each file whose libraries do not all resolve, with the loader's
words; exit 1 if there is one.  Needs root (chroot).
"""
import os
import struct
import subprocess
import sys

ET_EXEC, ET_DYN = 2, 3
PT_DYNAMIC, PT_INTERP = 2, 3


def elf_info(path):
    """(is dynamic, PT_INTERP or None) of an ELF executable or shared
    object; None for anything else (other files, relocatable objects)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:  # ELFCLASS64
                return None
            end = "<" if head[5] == 1 else ">"
            e_type, = struct.unpack_from(end + "H", head, 16)
            if e_type not in (ET_EXEC, ET_DYN):
                return None
            phoff, = struct.unpack_from(end + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
            dynamic, interp = False, None
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                p_type, _, p_offset, _, _, p_filesz = struct.unpack(end + "IIQQQQ", f.read(40))
                if p_type == PT_DYNAMIC:
                    dynamic = True
                elif p_type == PT_INTERP:
                    f.seek(p_offset)
                    interp = f.read(p_filesz).rstrip(b"\0").decode()
            return dynamic, interp
    except (OSError, struct.error):
        return None


def main():
    root = os.path.abspath(sys.argv[1])
    files, interps = [], set()
    for d, dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            info = elf_info(p)
            if info and info[0]:
                files.append("/" + os.path.relpath(p, root))
                if info[1]:
                    interps.add(info[1])
    if not files:
        print(f"{root}: no dynamically linked ELF file", file=sys.stderr)
        return 1
    if len(interps) != 1:
        print(f"{root}: expected one dynamic loader, found {sorted(interps)}", file=sys.stderr)
        return 1
    ldso = interps.pop()
    bad = 0
    for f in sorted(files):
        p = subprocess.run(["chroot", root, ldso, "--list", f], capture_output=True, text=True)
        out = (p.stdout + p.stderr).strip()
        if p.returncode != 0 or "not found" in out:
            bad += 1
            missing = [l.strip() for l in out.splitlines() if "not found" in l] or [out]
            print(f"{f}: " + "; ".join(missing))
    print(f"{len(files)} dynamically linked ELF files checked with {ldso}: "
          f"{'all libraries resolve' if not bad else f'{bad} with missing libraries'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
