//! Building the bundle's ONNX graphs from plain weights with tract-onnx's
//! protobuf types. Every graph: IR version 8, opset 20 (LayerNormalization,
//! Gelu), a full type on every input with symbolic `B`/`S` dimensions, and no
//! value_info — the form tract and onnxruntime both read correctly.

use bundle::manifest::{IR_VERSION, OPSET};
use prost::Message;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

/// A weight matrix or vector in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Weight {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "weight data does not fill its shape");
        Self { shape, data }
    }

    /// The transpose of a 2-D weight: PyTorch stores Linear weights (out, in),
    /// MatMul wants (in, out).
    pub fn transposed(&self) -> Self {
        let (r, c) = (self.shape[0], self.shape[1]);
        let mut data = vec![0f32; r * c];
        for i in 0..r {
            for j in 0..c {
                data[j * r + i] = self.data[i * c + j];
            }
        }
        Self { shape: vec![c, r], data }
    }
}

pub enum Dim {
    Fixed(i64),
    Symbol(&'static str),
}

/// Accumulates nodes and initializers; names are generated where not given.
#[derive(Default)]
pub struct GraphBuilder {
    graph: GraphProto,
    counter: usize,
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: v, ..Default::default() }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tract_onnx::pb::tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n),
                Dim::Symbol(s) => dimension::Value::DimParam(s.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        Self { graph: GraphProto { name: name.into(), ..Default::default() }, counter: 0 }
    }

    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> String {
        self.graph.input.push(value_info(name, elem, dims));
        name.to_string()
    }

    pub fn output(&mut self, value: &str, name: &str, elem: DataType, dims: &[Dim]) {
        self.node("Identity", &[value], vec![], Some(name));
        self.graph.output.push(value_info(name, elem, dims));
    }

    /// An f32 initializer (stored as raw little-endian bytes).
    pub fn weight(&mut self, name: &str, w: &Weight) -> String {
        let raw: Vec<u8> = w.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.graph.initializer.push(TensorProto {
            name: name.into(),
            dims: w.shape.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: raw,
            ..Default::default()
        });
        name.to_string()
    }

    pub fn scalar(&mut self, v: f32) -> String {
        let name = self.fresh("const");
        self.weight(&name, &Weight::new(vec![], vec![v]))
    }

    pub fn ints(&mut self, v: &[i64]) -> String {
        let name = self.fresh("ints");
        self.graph.initializer.push(TensorProto {
            name: name.clone(),
            dims: vec![v.len() as i64],
            data_type: DataType::Int64 as i32,
            int64_data: v.to_vec(),
            ..Default::default()
        });
        name
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}", self.counter)
    }

    /// Adds a node with one output and returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>, out: Option<&str>) -> String {
        let output = out.map(String::from).unwrap_or_else(|| self.fresh(&op.to_lowercase()));
        let name = self.fresh(op);
        self.graph.node.push(NodeProto {
            op_type: op.into(),
            name,
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            attribute,
            ..Default::default()
        });
        output
    }

    // ---- the few layers a BERT needs -------------------------------------------------

    /// x·W + b with W stored (in, out).
    pub fn linear(&mut self, x: &str, name: &str, weight: &Weight, bias: &Weight) -> String {
        let w = self.weight(&format!("{name}.weight"), &weight.transposed());
        let b = self.weight(&format!("{name}.bias"), bias);
        let y = self.node("MatMul", &[x, &w], vec![], None);
        self.node("Add", &[&y, &b], vec![], None)
    }

    pub fn layer_norm(&mut self, x: &str, name: &str, weight: &Weight, bias: &Weight, eps: f32) -> String {
        let w = self.weight(&format!("{name}.weight"), weight);
        let b = self.weight(&format!("{name}.bias"), bias);
        self.node("LayerNormalization", &[x, &w, &b], vec![attr_int("axis", -1), attr_float("epsilon", eps)], None)
    }

    pub fn gelu(&mut self, x: &str) -> String {
        self.node("Gelu", &[x], vec![], None)
    }

    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.node("Transpose", &[x], vec![attr_ints("perm", perm)], None)
    }

    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.ints(shape);
        self.node("Reshape", &[x, &s], vec![], None)
    }

    pub fn softmax(&mut self, x: &str) -> String {
        self.node("Softmax", &[x], vec![attr_int("axis", -1)], None)
    }

    /// (B, S) int64 0/1 mask → (B, 1, 1, S) additive bias: 0 or −1e4. A
    /// finite large negative, not f32::MIN, so f16 graphs do not turn it into NaN.
    pub fn attention_bias(&mut self, mask: &str) -> String {
        let f = self.node("Cast", &[mask], vec![attr_int("to", DataType::Float as i64)], None);
        let one = self.scalar(1.0);
        let neg = self.scalar(-1e4);
        let inv = self.node("Sub", &[&one, &f], vec![], None);
        let bias = self.node("Mul", &[&inv, &neg], vec![], None);
        let axes = self.ints(&[1, 2]);
        self.node("Unsqueeze", &[&bias, &axes], vec![], None)
    }

    /// Hidden state of the first token: (B, S, H) → (B, H).
    pub fn first_token(&mut self, x: &str) -> String {
        let zero = self.ints(&[0]);
        let one = self.ints(&[1]);
        let sliced = self.node("Slice", &[x, &zero, &one, &one], vec![], None); // (B, 1, H)
        self.node("Squeeze", &[&sliced, &one], vec![], None)
    }

    pub fn finish(self) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: "bert-edge".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.graph),
            ..Default::default()
        }
    }
}

pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
