//! The HTML report of `baler plot`: one `index.html` with the evaluation table and every
//! figure, so one file opens the whole report. It needs nothing but the images beside it.

use baler::data::AtomicFile;
use baler::evaluate::Evaluation;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// A figure in the report: a file beside `index.html`.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureEntry {
    /// File name, relative to the report.
    pub file: String,
    /// Caption under the figure.
    pub caption: String,
    /// Anchor for links to the figure (empty: none).
    pub anchor: String,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

/// A titled group of figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Heading.
    pub heading: String,
    /// Figures, in order.
    pub figures: Vec<FigureEntry>,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// Page title.
    pub title: String,
    /// Name-value lines at the top (inputs, model).
    pub details: Vec<(String, String)>,
    /// The evaluation, shown as a table.
    pub evaluation: &'a Evaluation,
    /// Anchors of the figures of each evaluation row (empty: no link).
    pub row_anchors: Vec<String>,
    /// Notes (e.g. a figure left out and why).
    pub notes: Vec<String>,
    /// Figures.
    pub sections: Vec<Section>,
}

/// `text` with the HTML special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1560px}\
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}\
th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}\
figure{margin:1.5em 0}img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{color:#555;font-size:14px}.summary{font-size:15px}.note{color:#8a5a00}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{color:#666}dd{margin:0}";

impl Report<'_> {
    /// The page.
    pub fn html(&self) -> String {
        let mut page = String::new();
        let title = escape(&self.title);
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
        );
        page.push_str("<dl>\n");
        for (name, value) in &self.details {
            let _ = writeln!(page, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(value));
        }
        page.push_str("</dl>\n");
        let _ = writeln!(
            page,
            "<p class=\"summary\">{}</p>",
            escape(&self.evaluation.summary_line())
        );
        for note in &self.notes {
            let _ = writeln!(page, "<p class=\"note\">{}</p>", escape(note));
        }
        page.push_str("<h2>Errors</h2>\n<table>\n<tr>");
        for heading in self.evaluation.headings() {
            let _ = write!(page, "<th>{}</th>", escape(&heading));
        }
        page.push_str("</tr>\n");
        for (i, row) in self.evaluation.rows().iter().enumerate() {
            page.push_str("<tr>");
            for (k, cell) in row.iter().enumerate() {
                let anchor = self.row_anchors.get(i).filter(|a| !a.is_empty());
                match (k, anchor) {
                    (0, Some(anchor)) => {
                        let _ = write!(
                            page,
                            "<td><a href=\"#{}\">{}</a></td>",
                            escape(anchor),
                            escape(cell)
                        );
                    }
                    _ => {
                        let _ = write!(page, "<td>{}</td>", escape(cell));
                    }
                }
            }
            page.push_str("</tr>\n");
        }
        page.push_str(
            "</table>\n<p><small>max/range: largest |error| over the column's range; \
            mean rel and max rel: |error| / |original| over non-zero originals; W1: \
            Wasserstein-1 distance between the original and reconstructed distributions; \
            &lt;=b: fraction of values within b &times; the column's range.</small></p>\n",
        );
        for section in &self.sections {
            let _ = writeln!(page, "<h2>{}</h2>", escape(&section.heading));
            for figure in &section.figures {
                let id = if figure.anchor.is_empty() {
                    String::new()
                } else {
                    format!(" id=\"{}\"", escape(&figure.anchor))
                };
                let _ = writeln!(
                    page,
                    "<figure{id}><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"{}\" loading=\"lazy\">\
                     <figcaption>{}</figcaption></figure>",
                    escape(&figure.file),
                    figure.size.0,
                    figure.size.1,
                    escape(&figure.caption),
                    escape(&figure.caption)
                );
            }
        }
        page.push_str("</body>\n</html>\n");
        page
    }

    /// Writes the page to `path` (atomically).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let mut file = AtomicFile::create(path)?;
        file.writer()
            .write_all(self.html().as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(file.commit()?)
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
