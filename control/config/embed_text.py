#!/usr/bin/env python3
"""Writes a C++ header holding a text file as a raw string literal.

Generated at build time so that the embedded default configuration and conf/demo.yaml
can never diverge. Usage: embed_text.py INPUT OUTPUT SYMBOL
"""
import sys

DELIM = "vleaf_embed"

src, dst, symbol = sys.argv[1:4]
with open(src, encoding="utf-8") as f:
    text = f.read()
if ")" + DELIM + '"' in text:
    sys.exit(f"{src}: contains the raw string delimiter ){DELIM}\"")
with open(dst, "w", encoding="utf-8") as f:
    f.write(f"// Generated from {src} by embed_text.py; edit the source file instead.\n")
    f.write("#pragma once\n\n")
    f.write(f'inline constexpr char {symbol}[] = R"{DELIM}({text}){DELIM}";\n')
