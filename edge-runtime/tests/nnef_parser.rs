//! The NNEF text parser the board's reader runs: tract-nnef's, vendored with a
//! patched subscript rule (vendor/README.md) that parses an expression's atom
//! once and then an optional `[...]`. These pin down that it still builds
//! NNEF's tree, with and without subscripts, and that nesting costs linear work.

use tract_nnef::ast::parse::parse_document;
use tract_nnef::ast::{Identifier, Literal, RValue, Subscript};

fn id(name: &str) -> RValue {
    RValue::Identifier(Identifier::from(name))
}

fn num(text: &str) -> RValue {
    RValue::Literal(Literal::Numeric(text.into()))
}

/// The right-hand side of the graph's last assignment.
fn parse_rhs(expr: &str) -> RValue {
    let doc = format!("version 1.0;\ngraph g(x) -> (y) {{\n  x = external<scalar>(shape = [2, 3]);\n  y = {expr};\n}}\n");
    let doc = parse_document(&doc).unwrap_or_else(|e| panic!("{expr}: {e:?}"));
    doc.graph_def.body.last().expect("two assignments").right.clone()
}

#[test]
fn an_atom_without_a_subscript_is_the_atom_itself() {
    assert_eq!(parse_rhs("x"), id("x"));
    assert_eq!(parse_rhs("2.5"), num("2.5"));
    assert_eq!(parse_rhs("[x, 1]"), RValue::Array(vec![id("x"), num("1")]));
}

#[test]
fn subscripts_index_and_slice_the_atom_before_them() {
    assert_eq!(parse_rhs("x[0]"), RValue::Subscript(Box::new(id("x")), Box::new(Subscript::Single(num("0")))));
    assert_eq!(parse_rhs("x[1:]"), RValue::Subscript(Box::new(id("x")), Box::new(Subscript::Range(Some(num("1")), None))));
    assert_eq!(parse_rhs("x[:2]"), RValue::Subscript(Box::new(id("x")), Box::new(Subscript::Range(None, Some(num("2"))))));
    // A subscript binds tighter than arithmetic, and an array literal can be subscripted.
    let sum = parse_rhs("x[0] + [x, x][1]");
    let RValue::Binary(left, op, right) = sum else { panic!("not a sum: {sum:?}") };
    assert_eq!(op, "+");
    assert!(matches!(*left, RValue::Subscript(ref of, _) if **of == id("x")));
    assert!(matches!(*right, RValue::Subscript(ref of, _) if matches!(**of, RValue::Array(_))));
}

#[test]
fn invocations_nest_as_deep_as_the_text_does() {
    // Upstream's rule parsed the atom again whenever no `[` followed, doubling
    // the work per nesting level: 2^40 atom parses here, a test that would
    // never end. The patched rule parses each atom once.
    let depth = 40;
    let expr = format!("{}x{}", "neg(".repeat(depth), ")".repeat(depth));
    let mut rhs = parse_rhs(&expr);
    for _ in 0..depth {
        let RValue::Invocation(inv) = rhs else { panic!("expected neg(...), got {rhs:?}") };
        assert_eq!(inv.id, Identifier::from("neg"));
        rhs = inv.arguments.into_iter().next().expect("one argument").rvalue;
    }
    assert_eq!(rhs, id("x"));
}
