"""Reading an XLSX workbook with bounded memory: its parts, shared strings, styles and sheet."""
