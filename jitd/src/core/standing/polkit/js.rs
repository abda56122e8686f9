//! JavaScript read at the level of its tokens, enough for polkit's rules:
//! words, string literals and punctuation, comments and regular
//! expressions left out, brackets matched. Nothing is run or fully parsed.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A name, keyword or number.
    Word(String),
    /// A string literal's value (an escape stands for the character after
    /// its backslash).
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
/// regular expression.
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
    };
    lexer.run();
    lexer.out
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: usize,
    out: Vec<Token>,
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
                '"' | '\'' | '`' => self.string(c),
                c if is_word_char(c) => self.word(),
                c => {
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
            if c == quote {
                self.at += 1;
                break;
            }
            let c = match c {
                '\\' => {
                    self.at += 1;
                    match self.peek(0) {
                        Some(escaped) => escaped,
                        None => break,
                    }
                }
                c => c,
            };
            if c == '\n' {
                self.line += 1;
            }
            value.push(c);
            self.at += 1;
        }
        self.push(Tok::Str(value), start);
    }

    fn word(&mut self) {
        let mut word = String::new();
        while let Some(c) = self.peek(0).filter(|c| is_word_char(*c)) {
            word.push(c);
            self.at += 1;
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
