using System.CommandLine;
using MLNet.Contrastive.Onnx;
using MLNet.Contrastive.Training;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary><c>export-onnx</c>: the encoder of a checkpoint as an ONNX file.</summary>
internal static class ExportOnnxCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "checkpoint.bin written by pretrain.", Required = true };
        var output = new Option<string>("--out") { Description = "ONNX file to write.", DefaultValueFactory = _ => "encoder.onnx" };
        var l2 = new Option<bool>("--l2-normalize") { Description = "L2-normalise the embeddings inside the graph." };
        var command = new Command("export-onnx", "Export a checkpoint's encoder to ONNX (input Pixels [N,C,H,W] 0–255, output Embedding [N,D]).")
        {
            checkpoint, output, l2,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var path = parse.GetValue(checkpoint)!;
            var pretrained = PretrainedEncoder.Load(path);
            var (channels, height, width) = pretrained.ImageShape!.Value;
            EncoderOnnxExporter.Export(pretrained.Encoder, parse.GetValue(output)!,
                new EncoderOnnxOptions { Height = height, Width = width, L2Normalize = parse.GetValue(l2) });
            Console.WriteLine($"Wrote {parse.GetValue(output)}: {channels}×{height}×{width} pixels → {pretrained.Encoder.EmbeddingDimension}-d embedding, opset {EncoderOnnxExporter.Opset}.");
            return 0;
        }));
        return command;
    }
}
