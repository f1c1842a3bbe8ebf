using System.Security.Cryptography;
using System.Text.Json.Nodes;
using MLNet.Contrastive.Methods;
using MLNet.Contrastive.Models;
using MLNet.Contrastive.Training;
using NUnit.Framework;

namespace MLNet.Contrastive.Tests.Training;

public class CheckpointFormatTests
{
    [Test]
    public void ACheckpointOfFormat3WhoseRunSettingsStoodAmongTheOthersLoadsWithThemInTheRunGroup()
    {
        using var folder = TestData.NewFolder();
        var options = new PretrainOptions
        {
            Method = new SimClrOptions(), Encoder = new EncoderOptions { StemWidth = 16, StageWidths = [16, 32] },
            Run = { Epochs = 3, BatchSize = 32, LearningRate = 1.5e-3, WeightDecay = 2e-4, Seed = 7, Threads = 2, Device = "cpu" },
            CheckpointPath = folder["current.bin"],
        };
        using (var session = new Pretrainer(options).Start(TestData.SampleTrain(64)))
            session.SaveCheckpoint();

        // The same checkpoint as format 3 wrote it: the run settings flat in "Options", its own digest.
        var bytes = File.ReadAllBytes(folder["current.bin"]);
        using var reader = new BinaryReader(new MemoryStream(bytes));
        var magic = reader.ReadString();
        Assert.That(reader.ReadInt32(), Is.EqualTo(4));
        var header = JsonNode.Parse(reader.ReadString())!.AsObject();
        var rest = bytes.AsSpan((int)reader.BaseStream.Position, bytes.Length - (int)reader.BaseStream.Position - 32 - 8).ToArray();
        var flat = header["Options"]!.AsObject();
        var run = flat["Run"]!.AsObject();
        flat.Remove("Run");
        foreach (var (name, value) in run.ToList())
        {
            run.Remove(name);
            flat[name] = value;
        }
        header["FormatVersion"] = 3;
        var old = new MemoryStream();
        using (var writer = new BinaryWriter(old, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(magic);
            writer.Write(3);
            writer.Write(header.ToJsonString());
            writer.Write(rest);
        }
        var contents = old.ToArray();
        File.WriteAllBytes(folder["format3.bin"], [.. contents, .. SHA256.HashData(contents), .. "MLNC-END"u8.ToArray()]);

        var stored = Checkpoint.ReadInfo(folder["format3.bin"]).Options.Run;
        Assert.That(stored, Is.EqualTo(Checkpoint.ReadInfo(folder["current.bin"]).Options.Run));
        Assert.That((stored.Epochs, stored.BatchSize, stored.LearningRate, stored.WeightDecay, stored.Seed, stored.Threads, stored.Device),
            Is.EqualTo(((int?)3, 32, (double?)1.5e-3, 2e-4, 7, 2, "cpu")));
        var (_, method) = Checkpoint.LoadMethod(folder["format3.bin"]);
        using (method)
            Assert.That(method.Encoder.parameters().Count(), Is.GreaterThan(0));
    }
}
