//! The NNEF ops a bundle's twin may use, and the reader that knows only those.
//!
//! tract's default NNEF framework registers every op tract-core has
//! (convolutions, pooling, FFTs, recurrent cells, …). The reader registers
//! only what `to-nnef` writes for a BERT segment, so an archive (untrusted
//! input) that asks for anything else is refused by name before any of that
//! code runs. `to-nnef` reads every archive it writes back with this reader,
//! so a twin that converts is a twin the board binary loads.
//!
//! With the vendored tract-nnef (vendor/README.md), whose reader no longer
//! builds the default framework on the side, this is also what keeps the
//! board binary small: most tract-core ops no registry here names (FFT,
//! recurrent cells, pooling) are no longer linked.
//!
//! The loaders of NNEF's standard ops are tract's own (`tract_nnef::ops::nnef::deser`);
//! the five `tract_core_*` ones with loaders are private in tract-nnef 0.23.9 and
//! are restated below, unchanged in behaviour.

use tract_nnef::internal::*;
use tract_nnef::ops::nnef::deser;
use tract_nnef::resource::{DatLoader, GraphNnefLoader, GraphQuantLoader};
use tract_nnef::tract_core::ops;
use tract_nnef::tract_core::ops::array::Gather;
use tract_nnef::tract_core::ops::cast::{cast, Cast};
use tract_nnef::tract_core::ops::nn::RmsNorm;

/// NNEF's standard primitives a twin uses (the segment graphs, with or
/// without the runtime's own ops), plus the standard library's fragments,
/// which are NNEF text built from primitives.
const STANDARD_PRIMITIVES: &[(&str, ToTract)] = &[
    ("external", deser::external),
    ("variable", deser::variable),
    ("reshape", deser::reshape),
    ("transpose", deser::transpose),
    ("concat", deser::concat),
    ("slice", deser::slice),
    ("squeeze", deser::squeeze),
    ("unsqueeze", deser::unsqueeze),
    ("matmul", deser::matmul),
    ("sum_reduce", deser::reduce),
    ("max_reduce", deser::reduce),
    ("softmax", deser::softmax),
];

fn standard(mut stdlib: Vec<FragmentDef>) -> Registry {
    let mut registry = Registry::new("tract_nnef");
    for (id, load) in STANDARD_PRIMITIVES {
        let pos = stdlib.iter().position(|f| f.decl.id.0 == *id).expect("a primitive of NNEF's standard library");
        let decl = stdlib.remove(pos).decl;
        registry.register_primitive(id, &decl.parameters, &decl.results, *load);
    }
    registry.register_binary("add", &ops::math::Add {});
    registry.register_binary("sub", &ops::math::Sub {});
    registry.register_binary("mul", &ops::math::Mul {});
    registry.register_binary("div", &ops::math::Div {});
    registry.register_binary("max", &ops::math::Max {});
    // The per-token int8 quantization of a dynamic-i8 bundle: |x| and clipping
    // (its rounding is `tract_core_round_even`, below).
    registry.register_binary("min", &ops::math::Min {});
    registry.register_unit_element_wise("abs", &ops::math::Abs {});
    registry.register_unit_element_wise("exp", &ops::math::Exp {});
    registry.register_unit_element_wise("tanh", &ops::math::Tanh {});
    registry.register_unit_element_wise("sqrt", &ops::math::Sqrt {});
    registry.register_unit_element_wise("rsqrt", &ops::math::Rsqrt {});
    registry.register_unit_element_wise("recip", &ops::math::Recip {});
    registry.register_unit_element_wise("square", &ops::math::Square {});
    registry.register_unit_element_wise("neg", &ops::math::Neg {});
    for frag in stdlib.into_iter().filter(|f| f.body.is_some()) {
        registry.register_fragment(frag);
    }
    registry
}

/// `tract_core_cast`, `tract_core_gather`, `tract_core_external`, `tract_core_einsum_q` (int8 products) and
/// `tract_core_rms_norm` (the stock LayerNorm expansion, `--no-fused-norm`).
fn core() -> Registry {
    let mut registry = Registry::new("tract_core");
    // ONNX's Round (half to even), in a dynamic-i8 bundle's per-token quantization.
    registry.register_unit_element_wise("tract_core_round_even", &ops::math::RoundHalfToEven {});
    registry.register_primitive(
        "tract_core_cast",
        &[TypeName::Scalar.tensor().named("input"), TypeName::String.named("to")],
        &[("output", TypeName::Scalar.tensor())],
        load_cast,
    );
    registry.register_primitive(
        "tract_core_gather",
        &[TypeName::Scalar.tensor().named("input"), TypeName::Scalar.tensor().named("indices"), TypeName::Integer.named("axis")],
        &[("output", TypeName::Scalar.tensor())],
        load_gather,
    );
    registry.register_primitive(
        "tract_core_external",
        &[TypeName::String.named("datum_type"), TypeName::Integer.array().named("shape")],
        &[("output", TypeName::Any.tensor())],
        load_external,
    );
    registry.register_primitive("tract_core_einsum_q", &einsum_q_parameters(), &[("output", TypeName::Scalar.tensor())], load_einsum_q);
    registry.register_primitive(
        "tract_core_rms_norm",
        &[TypeName::Scalar.tensor().named("input"), TypeName::Integer.named("axis"), TypeName::Scalar.named("eps").default(1e-6f32)],
        &[("output", TypeName::Scalar.tensor())],
        load_rms_norm,
    );
    registry
}

/// The integer products of an int8 bundle (i8 × i8 → i32 with zero points and scales).
fn einsum_q_parameters() -> Vec<Parameter> {
    vec![
        TypeName::Scalar.tensor().array().named("inputs"),
        TypeName::String.named("expr"),
        TypeName::String.named("acc"),
        TypeName::String.named("output").default(""),
        TypeName::Scalar.tensor().named("bias").default(0),
        TypeName::Integer.tensor().named("a0"),
        TypeName::Scalar.tensor().named("a_scale"),
        TypeName::Integer.tensor().named("b0"),
        TypeName::Scalar.tensor().named("b_scale"),
        TypeName::Integer.tensor().named("c0"),
        TypeName::Scalar.tensor().named("c_scale"),
    ]
}

fn load_einsum_q(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let expr = invocation.named_arg_as::<String>(builder, "expr")?.parse::<AxesMapping>()?;
    let mut inputs: TVec<OutletId> = invocation.named_arg_as(builder, "inputs")?;
    for q in einsum_q_parameters().iter().skip(4) {
        inputs.push(invocation.named_arg_as(builder, &q.id.0)?);
    }
    let acc = invocation.named_arg_as::<String>(builder, "acc")?.parse()?;
    let output = invocation.get_named_arg_as::<String>(builder, "output")?.filter(|o| !o.is_empty());
    let output = output.context("tract_core_einsum_q needs an output type")?.parse()?;
    builder.wire(ops::einsum::EinSum::newq(expr, acc, output), &inputs)
}

fn load_rms_norm(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let input = invocation.named_arg_as(builder, "input")?;
    let axis: usize = invocation.named_arg_as(builder, "axis")?;
    let eps = invocation.named_arg_as(builder, "eps")?;
    builder.wire(RmsNorm { axis, eps }, &[input])
}

fn load_cast(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let input = invocation.named_arg_as(builder, "input")?;
    let quant = invocation.dt_from_quant_file.first().copied().flatten();
    let to = match invocation.named_arg_as::<String>(builder, "to") {
        Ok(s) => {
            let dt: DatumType = s.parse()?;
            match quant {
                Some(q) if q.unquantized() != dt.unquantized() => bail!("Mismatched cast: graph.quant {q:?}, got graph.nnef {dt:?}"),
                Some(q) => q,
                None => dt,
            }
        }
        Err(_) => quant.context("No datum type for cast")?,
    };
    builder.wire(Cast { to }, &[input])
}

fn load_gather(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let input = invocation.named_arg_as(builder, "input")?;
    let indices = invocation.named_arg_as(builder, "indices")?;
    let output_type: Option<DatumType> =
        invocation.optional_named_arg_as::<String>(builder, "datum_type")?.map(|s| s.parse()).transpose()?;
    let indices = builder.wire_as_outlets(cast(i64::datum_type()), &[indices])?[0];
    let axis = invocation.named_arg_as(builder, "axis")?;
    builder.wire(Gather { axis, output_type }, &[input, indices])
}

fn load_external(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let shape: TVec<TDim> = builder.allowing_new_symbols(|builder| invocation.named_arg_as(builder, "shape"))?;
    let mut dt: DatumType = invocation.named_arg_as::<String>(builder, "datum_type")?.parse()?;
    if let Some(Some(q)) = invocation.dt_from_quant_file.first() {
        dt = *q;
    }
    Ok(Value::Wire(builder.model.add_source("", dt.fact(&*shape))?))
}

/// The reader of bundle twins: the ops above and the runtime's own
/// (`own`), from a graph document and its tensors (no sub-models).
pub fn reader(own: Registry) -> Nnef {
    // Parsed once (tract's default framework parses it twice): a few percent of a load.
    let stdlib = tract_nnef::framework::stdlib();
    Nnef {
        stdlib: stdlib.clone(),
        registries: vec![standard(stdlib), core(), own],
        resource_loaders: vec![GraphNnefLoader.into_boxed(), DatLoader.into_boxed(), GraphQuantLoader.into_boxed()],
        allow_extended_identifier_syntax: false,
        extern_all_constants: false,
    }
}
