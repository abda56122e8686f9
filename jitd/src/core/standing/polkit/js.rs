//! JavaScript read at the level of its tokens, enough for polkit's rules:
//! words, string literals and punctuation (escapes read as JavaScript
//! reads them, a template literal as the sum of strings and expressions it
//! computes), comments and regular expressions left out, brackets matched,
//! and where a statement ends as JavaScript ends it in the usual cases.
//! Nothing is run or fully parsed.
//!
//! A `/` after `)`, `]`, a value or a name divides, anywhere else it opens
//! a regular expression: JavaScript decides some of these by the grammar
//! (`if (x) /re/`), and a rule written to be misread there can hide code
//! in what is taken for a regular expression or a string.
//!
//! Where it cannot be sure, a statement is taken to end early: a guard
//! then covers less than it may, and what it guards counts as unguarded.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A name, keyword or number.
    Word(String),
    /// A string literal's value, its escapes read.
    Str(String),
    /// A regular expression literal: what it says is of no use here, only
    /// that its quotes and slashes are no strings or comments.
    Regex,
    Punct(char),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    /// The line it starts on.
    pub line: usize,
}

impl Token {
    pub fn is_word(&self, word: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w == word)
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }

    pub fn word(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    pub fn string(&self) -> Option<&str> {
        match &self.tok {
            Tok::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn opens(&self) -> bool {
        matches!(self.tok, Tok::Punct('(' | '[' | '{'))
    }

    pub fn closes(&self) -> bool {
        matches!(self.tok, Tok::Punct(')' | ']' | '}'))
    }
}

/// Keywords after which an expression begins: a `/` there starts a
/// regular expression, a line break there ends no statement.
const BEFORE_EXPRESSION: [&str; 12] = [
    "return",
    "typeof",
    "instanceof",
    "in",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
];

/// The tokens of JavaScript text.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        at: 0,
        line: 1,
        out: Vec::new(),
        substitutions: Vec::new(),
    };
    lexer.run();
    lexer.out
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: usize,
    out: Vec<Token>,
    /// The template literals' `${...}` open around `at`, innermost last:
    /// how many braces each has open inside it.
    substitutions: Vec<usize>,
}

impl Lexer {
    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                '\n' => {
                    self.line += 1;
                    self.at += 1;
                }
                c if c.is_whitespace() => self.at += 1,
                '/' if self.peek(1) == Some('/') => self.line_comment(),
                '/' if self.peek(1) == Some('*') => self.block_comment(),
                '/' if self.regex_may_start() => self.regex(),
                '"' | '\'' => self.string(c),
                '`' => {
                    self.at += 1;
                    self.template();
                }
                '}' if self.substitutions.last() == Some(&0) => {
                    self.substitutions.pop();
                    self.push(Tok::Punct(')'), self.line);
                    self.push(Tok::Punct('+'), self.line);
                    self.at += 1;
                    self.template();
                }
                c if is_word_char(c) || (c == '\\' && self.peek(1) == Some('u')) => self.word(),
                c => {
                    if let Some(open) = self.substitutions.last_mut() {
                        match c {
                            '{' => *open += 1,
                            '}' => *open -= 1,
                            _ => {}
                        }
                    }
                    self.push(Tok::Punct(c), self.line);
                    self.at += 1;
                }
            }
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.push(Token { tok, line });
    }

    fn line_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.at += 1;
        }
    }

    fn block_comment(&mut self) {
        self.at += 2;
        while let Some(c) = self.peek(0) {
            if c == '*' && self.peek(1) == Some('/') {
                self.at += 2;
                return;
            }
            if c == '\n' {
                self.line += 1;
            }
            self.at += 1;
        }
    }

    /// Whether a `/` here starts a regular expression rather than divides:
    /// it does where a value cannot end before it.
    fn regex_may_start(&self) -> bool {
        match self.out.last().map(|t| &t.tok) {
            None => true,
            Some(Tok::Word(w)) => BEFORE_EXPRESSION.contains(&w.as_str()),
            Some(Tok::Punct(c)) => !matches!(c, ')' | ']'),
            Some(Tok::Str(_) | Tok::Regex) => false,
        }
    }

    /// A regular expression literal; a `/` that opens none on its line is
    /// punctuation.
    fn regex(&mut self) {
        let mut end = self.at + 1;
        let mut in_class = false;
        loop {
            match self.chars.get(end) {
                None | Some('\n') => {
                    self.push(Tok::Punct('/'), self.line);
                    self.at += 1;
                    return;
                }
                Some('\\') => end += 1,
                Some('[') => in_class = true,
                Some(']') => in_class = false,
                Some('/') if !in_class => break,
                Some(_) => {}
            }
            end += 1;
        }
        end += 1;
        while self.chars.get(end).is_some_and(|c| is_word_char(*c)) {
            end += 1;
        }
        self.push(Tok::Regex, self.line);
        self.at = end;
    }

    fn string(&mut self, quote: char) {
        let start = self.line;
        let mut value = String::new();
        self.at += 1;
        while let Some(c) = self.peek(0) {
            self.at += 1;
            match c {
                c if c == quote => break,
                '\\' => value.extend(self.escape()),
                c => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    value.push(c);
                }
            }
        }
        self.push(Tok::Str(value), start);
    }

    /// A template literal's text from `at` to its closing backquote or its
    /// next `${`. The literal reads as what it computes, a sum of strings
    /// and expressions: `` `a${x}b` `` as `"a" + (x) + "b"`, the
    /// expression's tokens read as any others (its `}` goes back here).
    fn template(&mut self) {
        let start = self.line;
        let mut value = String::new();
        while let Some(c) = self.peek(0) {
            self.at += 1;
            match c {
                '`' => break,
                '$' if self.peek(0) == Some('{') => {
                    self.at += 1;
                    self.push(Tok::Str(value), start);
                    self.push(Tok::Punct('+'), self.line);
                    self.push(Tok::Punct('('), self.line);
                    self.substitutions.push(0);
                    return;
                }
                '\\' => value.extend(self.escape()),
                c => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    value.push(c);
                }
            }
        }
        self.push(Tok::Str(value), start);
    }

    /// The character the escape whose backslash is just behind `at`
    /// stands for, as JavaScript reads it (`\n`, `\x79`, `\u0079`,
    /// `\u{79}`, `\171`, `\y`); none for a line continuation. A malformed
    /// one stands for its letter.
    fn escape(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.at += 1;
        let code = match c {
            '\n' => {
                self.line += 1;
                return None;
            }
            '\r' => {
                if self.peek(0) == Some('\n') {
                    self.at += 1;
                    self.line += 1;
                }
                return None;
            }
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            'x' => self.hex(2).unwrap_or(c),
            'u' => self.unicode().unwrap_or(c),
            '0'..='7' => self.octal(c),
            c => c,
        };
        Some(code)
    }

    /// `{HEX}` or 4 hex digits after `\u`, taken only if well formed.
    fn unicode(&mut self) -> Option<char> {
        if self.peek(0) != Some('{') {
            return self.hex(4);
        }
        let digits = (1..).take_while(|&i| self.peek(i).is_some_and(|c| c.is_ascii_hexdigit()));
        let len = digits.count();
        if len == 0 || self.peek(len + 1) != Some('}') {
            return None;
        }
        let text: String = self.chars[self.at + 1..self.at + 1 + len].iter().collect();
        let c = u32::from_str_radix(&text, 16)
            .ok()
            .and_then(char::from_u32)?;
        self.at += len + 2;
        Some(c)
    }

    /// `len` hex digits at `at`, taken only if all are there.
    fn hex(&mut self, len: usize) -> Option<char> {
        let text: String = self.chars.get(self.at..self.at + len)?.iter().collect();
        if !text.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let c = u32::from_str_radix(&text, 16)
            .ok()
            .and_then(char::from_u32)?;
        self.at += len;
        Some(c)
    }

    /// A legacy octal escape whose first digit, `first`, is read: up to
    /// three digits, at most 0o377.
    fn octal(&mut self, first: char) -> char {
        let mut code = first.to_digit(8).unwrap_or(0);
        while let Some(d) = self.peek(0).and_then(|c| c.to_digit(8)) {
            if code * 8 + d > 0o377 {
                break;
            }
            code = code * 8 + d;
            self.at += 1;
        }
        char::from_u32(code).unwrap_or(first)
    }

    /// A name, its `\u` escapes read as JavaScript reads them
    /// (`add\u0052ule` is `addRule`).
    fn word(&mut self) {
        let mut word = String::new();
        loop {
            match self.peek(0) {
                Some(c) if is_word_char(c) => {
                    word.push(c);
                    self.at += 1;
                }
                Some('\\') if self.peek(1) == Some('u') => {
                    self.at += 1;
                    word.extend(self.escape());
                }
                _ => break,
            }
        }
        self.push(Tok::Word(word), self.line);
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The index of the bracket closing the one at `open`; `None` when it is
/// never closed.
pub fn closing(t: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, token) in t.iter().enumerate().skip(open) {
        if token.opens() {
            depth += 1;
        } else if token.closes() {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// The body, from its `{` to its `}`, of each function literal:
/// `function name(...) {...}`, and an arrow's `=> {...}`.
pub fn function_bodies(t: &[Token]) -> Vec<(usize, usize)> {
    let mut bodies = Vec::new();
    for (i, token) in t.iter().enumerate() {
        let open = if token.is_word("function") {
            let params = i + 1 + usize::from(t.get(i + 1).is_some_and(|n| n.word().is_some()));
            if !t.get(params).is_some_and(|p| p.is_punct('(')) {
                continue;
            }
            closing(t, params).map(|close| close + 1)
        } else if token.is_punct('=') && t.get(i + 1).is_some_and(|n| n.is_punct('>')) {
            Some(i + 2)
        } else {
            None
        };
        let Some(open) = open.filter(|o| t.get(*o).is_some_and(|b| b.is_punct('{'))) else {
            continue;
        };
        if let Some(close) = closing(t, open) {
            bodies.push((open, close));
        }
    }
    bodies
}

/// The index just past the statement that starts at `start`.
pub fn statement_end(t: &[Token], start: usize) -> usize {
    let Some(first) = t.get(start) else {
        return start;
    };
    if first.is_punct('{') {
        return closing(t, start).map_or(start + 1, |close| close + 1);
    }
    match first.word() {
        Some(keyword @ ("if" | "for" | "while" | "with"))
            if t.get(start + 1).is_some_and(|p| p.is_punct('(')) =>
        {
            let Some(close) = closing(t, start + 1) else {
                return start + 1;
            };
            let end = statement_end(t, close + 1);
            if keyword == "if" && t.get(end).is_some_and(|e| e.is_word("else")) {
                statement_end(t, end + 1)
            } else {
                end
            }
        }
        // Not followed here: taken to end at once (a guard over one then
        // guards nothing).
        Some("do" | "try" | "switch" | "function" | "else") => start + 1,
        _ => simple_statement_end(t, start),
    }
}

/// The end of an expression, `var` or `return` statement: its `;`, the
/// bracket closing the block around it, or a line break where JavaScript
/// inserts a `;`.
pub fn simple_statement_end(t: &[Token], start: usize) -> usize {
    let mut depth = 0usize;
    for i in start..t.len() {
        let token = &t[i];
        if i > start && depth == 0 && semicolon_inserted(&t[i - 1], token) {
            return i;
        }
        if token.opens() {
            depth += 1;
        } else if token.closes() {
            match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return i,
            }
        } else if depth == 0 && token.is_punct(';') {
            return i + 1;
        }
    }
    t.len()
}

/// Whether JavaScript ends a statement at the line break between `before`
/// and `after`: after `return` (and its kind), or where `after` cannot
/// continue what `before` ends.
fn semicolon_inserted(before: &Token, after: &Token) -> bool {
    if after.line == before.line {
        return false;
    }
    let restricted = ["return", "break", "continue", "throw"];
    if restricted.iter().any(|w| before.is_word(w)) {
        return true;
    }
    let ends_value = match &before.tok {
        Tok::Word(w) => !BEFORE_EXPRESSION.contains(&w.as_str()),
        Tok::Str(_) | Tok::Regex => true,
        Tok::Punct(c) => matches!(c, ')' | ']' | '}'),
    };
    let starts_statement = match &after.tok {
        Tok::Word(w) => w != "in" && w != "instanceof",
        Tok::Str(_) => true,
        Tok::Regex => false,
        Tok::Punct(c) => matches!(c, '{' | '!' | '~'),
    };
    ends_value && starts_statement
}
