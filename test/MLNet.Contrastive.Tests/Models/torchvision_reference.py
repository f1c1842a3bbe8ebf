"""Writes torchvision ResNets' state dicts and their outputs for TorchvisionWeightsTests (Debian's python3-torchvision).

    /usr/bin/python3 torchvision_reference.py OUT_DIR

For each of resnet18 (64 px, plain keys with its classifier), resnet34 (32 px, keys under 'backbone.', no classifier)
and resnet50 (64 px, bottleneck blocks, keys under 'encoder.'): NAME.pt (torch.save of the state dict), NAME-input.bin
(float32 [2, 3, S, S] in [0, 1]) and NAME-output.bin (float32 [2, D], D = 512 or 2,048: the global-average features in
eval mode after ImageNet normalisation); resnet18 also as NAME.safetensors. Batch-norm statistics and affine
parameters are drawn at random so that eval mode is not the identity. Also broken.pt (resnet18 with one key removed and
one added) and misshapen.pt (one weight of the wrong shape).

And a Vision Transformer (torchvision's VisionTransformer: 32 px, patch 4, 2 layers, 2 heads of 64, width 128, MLP 256;
LayerNorms and biases drawn at random): vit.pt (torchvision's names), vit-timm.pt (the same weights in timm's names, under
'model.'), vit-input.bin (float32 [2, 3, 32, 32]) and vit-output.bin (float32 [2, 128]: the class token after the last
norm, eval mode, after ImageNet normalisation).
"""
import json
import struct
import sys
import torch
import torchvision

out = sys.argv[1]
torch.manual_seed(0)
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
for name, size, prefix in (('resnet18', 64, ''), ('resnet34', 32, 'backbone.'), ('resnet50', 64, 'encoder.')):
    model = getattr(torchvision.models, name)(weights=None)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    state = {prefix + k: v for k, v in model.state_dict().items() if not (prefix and k.startswith('fc.'))}
    torch.save(state, f'{out}/{name}.pt')
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    model.fc = torch.nn.Identity()
    with torch.no_grad():
        y = model((x - mean) / std)
    x.numpy().tofile(f'{out}/{name}-input.bin')
    y.numpy().tofile(f'{out}/{name}-output.bin')
    if name == 'resnet18':
        # The same weights as safetensors (an 8-byte header length, the JSON header, the raw bytes), written by hand:
        # Debian has no python3-safetensors.
        header, blobs, offset = {}, [], 0
        for key, value in state.items():
            data = value.contiguous().numpy().tobytes()
            dtype = {torch.float32: 'F32', torch.int64: 'I64'}[value.dtype]
            header[key] = {'dtype': dtype, 'shape': list(value.shape), 'data_offsets': [offset, offset + len(data)]}
            blobs.append(data)
            offset += len(data)
        text = json.dumps(header).encode()
        with open(f'{out}/{name}.safetensors', 'wb') as f:
            f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))
        broken = dict(state)
        del broken['layer1.0.bn1.weight']
        broken['extra.weight'] = torch.zeros(3)
        torch.save(broken, f'{out}/broken.pt')
        misshapen = dict(state)
        misshapen['layer2.1.conv2.weight'] = torch.zeros(128, 128, 1, 1)
        torch.save(misshapen, f'{out}/misshapen.pt')

torch.manual_seed(2)
vit = torchvision.models.VisionTransformer(image_size=32, patch_size=4, num_layers=2, num_heads=2, hidden_dim=128, mlp_dim=256)
with torch.no_grad():
    for name, value in vit.named_parameters():
        if name.endswith('bias') or '.ln' in name or name.startswith('encoder.ln'):
            value.uniform_(-0.3, 0.3) if name.endswith('bias') else value.uniform_(0.5, 1.5)
    vit.class_token.normal_(0, 0.5)
vit.eval()
state = vit.state_dict()
torch.save(state, f'{out}/vit.pt')


def timm_name(key):
    if key == 'class_token': return 'cls_token'
    if key == 'encoder.pos_embedding': return 'pos_embed'
    if key.startswith('conv_proj.'): return 'patch_embed.proj.' + key[len('conv_proj.'):]
    if key.startswith('encoder.ln.'): return 'norm.' + key[len('encoder.ln.'):]
    if key.startswith('heads.head.'): return 'head.' + key[len('heads.head.'):]
    index, field = key[len('encoder.layers.encoder_layer_'):].split('.', 1)
    field = {'self_attention.in_proj_weight': 'attn.qkv.weight', 'self_attention.in_proj_bias': 'attn.qkv.bias'}.get(field, field)
    for a, b in (('self_attention.out_proj.', 'attn.proj.'), ('ln_1.', 'norm1.'), ('ln_2.', 'norm2.'), ('mlp.0.', 'mlp.fc1.'), ('mlp.3.', 'mlp.fc2.')):
        field = field.replace(a, b)
    return f'blocks.{index}.{field}'


torch.save({'model.' + timm_name(k): v for k, v in state.items()}, f'{out}/vit-timm.pt')
x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
vit.heads = torch.nn.Identity()
with torch.no_grad():
    y = vit((x - mean) / std)
x.numpy().tofile(f'{out}/vit-input.bin')
y.numpy().tofile(f'{out}/vit-output.bin')
print('written')
